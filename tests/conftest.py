from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from bot.engine import Engine
from bot.matching import Matcher


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE)


@pytest.fixture(scope="session")
def matcher(catalogue: Catalogue) -> Matcher:
    return build_matcher(catalogue)


@pytest.fixture
def engine(catalogue: Catalogue, matcher: Matcher) -> Engine:
    return Engine(catalogue, matcher)


@pytest.fixture
def catalogue_copy(tmp_path: Path) -> Path:
    """A writable copy of the Kassel catalogue, to break on purpose."""
    target = tmp_path / "kassel"
    shutil.copytree(DEFAULT_CATALOGUE, target)
    return target
