"""Wiring: config -> catalogue -> matcher -> engine."""

from __future__ import annotations

from pathlib import Path

from bot.catalogue import Catalogue, load_catalogue
from bot.config import Config
from bot.engine import Engine
from bot.matching import Matcher, load_stopwords
from bot.matching.index import DEFAULT_THRESHOLD


def build_matcher(catalogue: Catalogue, threshold: float = DEFAULT_THRESHOLD) -> Matcher:
    return Matcher(catalogue, load_stopwords(), threshold=threshold)


def build_engine(config: Config, catalogue_dir: Path | None = None) -> Engine:
    catalogue = load_catalogue(catalogue_dir or config.catalogue)
    return Engine(catalogue, build_matcher(catalogue, config.match_threshold),
                  default_language=config.default_language)
