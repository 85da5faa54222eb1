"""Wiring: config -> catalogue -> matcher -> engine."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.catalogue import Catalogue, load_catalogue
from bot.config import Config
from bot.engine import Engine
from bot.matching import Matcher, load_stopwords
from bot.matching.index import DEFAULT_THRESHOLD
from bot.store import Pseudonyms, Store, load_secret, sqlite_url

log = logging.getLogger(__name__)
JOURNAL_FILE = "journal"


def build_matcher(catalogue: Catalogue, threshold: float = DEFAULT_THRESHOLD) -> Matcher:
    return Matcher(catalogue, load_stopwords(), threshold=threshold)


def build_engine(config: Config, catalogue_dir: Path | None = None) -> Engine:
    catalogue = load_catalogue(catalogue_dir or config.catalogue)
    return Engine(catalogue, build_matcher(catalogue, config.match_threshold),
                  default_language=config.default_language, retention_days=config.retention_days)


async def open_store(config: Config, journal: bool = True) -> Store:
    """The configured database ($DATABASE_URL, else SQLite in the data directory), schema upgraded.
    Commands that only read (stats, stale) go without the journal, which belongs to the bot."""
    secret = load_secret(config.data_dir)
    url = config.database_url or sqlite_url(config.data_dir)
    # The journal keeps what the write-behind queue accepted until the database has it (README: the store).
    return await Store.open(url, Pseudonyms(secret), retention_days=config.retention_days,
                            journal=config.data_dir / JOURNAL_FILE if journal else None)


async def purge_periodically(store: Store, every_s: float = 6 * 3600) -> None:
    """The retention job: delete kept question texts past their time, now and every few hours."""
    while True:
        removed = await store.purge()
        if removed:
            log.info("purged %d question text(s) older than %d days", removed, store.retention_days)
        await asyncio.sleep(every_s)
