from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.bench_store import POSTGRES_URL, drop_schema, postgres_schema
from bot.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from bot.engine import Engine
from bot.matching import Matcher


@pytest.fixture(scope="session", autouse=True)
def shared_ranker_cache(tmp_path_factory) -> Path:
    """One trained ranker for the whole suite: bots in tests (and their subprocesses) use
    their own data folders, but share the ranker cache, which is keyed by what it depends on."""
    import os

    from bot.config import CACHE_DIR_ENV

    path = Path(os.environ.get(CACHE_DIR_ENV) or tmp_path_factory.mktemp("ranker-cache"))
    os.environ[CACHE_DIR_ENV] = str(path)
    return path


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE)


@pytest.fixture(scope="session")
def matcher(catalogue: Catalogue, shared_ranker_cache: Path) -> Matcher:
    from bot.config import load_config

    return build_matcher(catalogue, load_config(None))


@pytest.fixture
def engine(catalogue: Catalogue, matcher: Matcher) -> Engine:
    return Engine(catalogue, matcher)


@pytest.fixture
def catalogue_copy(tmp_path: Path) -> Path:
    """A writable copy of the Kassel catalogue, to break on purpose."""
    target = tmp_path / "kassel"
    shutil.copytree(DEFAULT_CATALOGUE, target)
    return target


@pytest.fixture(scope="session")
def synapse(tmp_path_factory):
    """One real Synapse on loopback for the whole session (test_matrix, test_handover_live)."""
    from bot.loopback.synapse import Synapse

    server = Synapse(tmp_path_factory.mktemp("synapse")).start()
    yield server
    server.remove()


@asynccontextmanager
async def _postgres_schema() -> AsyncIterator[tuple[str, dict]]:
    """A schema of its own on the PostgreSQL at 127.0.0.1:5432 (CI starts one), dropped after."""
    made = await postgres_schema()
    if made is None:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL}")
    try:
        yield POSTGRES_URL, made[1]
    finally:
        await drop_schema(made[0])


@pytest.fixture(params=["sqlite", "postgres"])
async def target(request, tmp_path):
    """(url, connect_args) of an empty database: SQLite, and PostgreSQL whenever a server answers."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/bot.db", None
        return
    async with _postgres_schema() as found:
        yield found


@pytest.fixture
async def postgres_target():
    async with _postgres_schema() as found:
        yield found
