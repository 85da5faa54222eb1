"""Wiring: config -> catalogue -> matcher -> engine."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.catalogue import Catalogue, load_catalogue
from bot.config import DEFAULT_MUNICIPALITY, Config
from bot.engine import Engine
from bot.matching import Matcher, load_stopwords
from bot.store import Pseudonyms, Store, load_secret, sqlite_url

if TYPE_CHECKING:
    from bot.handover.cases import CaseStore
    from bot.handover.dialogue import Desk

log = logging.getLogger(__name__)
JOURNAL_FILE = "journal"


def build_matcher(catalogue: Catalogue, config: Config | None = None) -> Matcher:
    """The ranker for `catalogue`: trained models and embeddings are cached in the data folder."""
    config = config or Config()
    return Matcher(catalogue, load_stopwords(), cache_dir=config.ranker_cache,
                   threshold=config.match_threshold)


def build_catalogue_and_matcher(folder: Path, config: Config | None = None) -> tuple[Catalogue, Matcher]:
    """Everything made from a catalogue folder, as one unit: a reload runs it off the event loop
    (seconds of CPU for a big catalogue or a learned ranker) and swaps in both or neither."""
    catalogue = load_catalogue(folder)
    return catalogue, build_matcher(catalogue, config)


def build_engine(config: Config, catalogue_dir: Path | None = None) -> Engine:
    catalogue, matcher = build_catalogue_and_matcher(catalogue_dir or config.catalogue, config)
    return Engine(catalogue, matcher, default_language=config.default_language, retention_days=config.retention_days,
                  desk=build_desk(config))


def build_desk(config: Config) -> Desk | None:
    """The counsellors' desk when a room is configured and Matrix can reach it (bot/handover)."""
    from bot.handover.dialogue import Desk
    from bot.handover.hours import parse_hours

    if not (config.handover.room and "matrix" in config.platforms):
        return None
    return Desk(parse_hours(config.handover.hours, config.handover.timezone))


async def open_store(config: Config, journal: bool = True) -> Store:
    """The configured database ($DATABASE_URL, else SQLite in the data directory), schema upgraded.
    Commands that only read (stats, stale) go without the journal, which belongs to the bot."""
    secret = load_secret(config.data_dir)
    url = config.database_url or sqlite_url(config.data_dir)
    # The journal keeps what the write-behind queue accepted until the database has it (README: the store).
    # Replicas go without: a replica that dies is not started again to replay it, so for them a
    # change is durable once PostgreSQL has it. One journal per city: each city has its own store.
    name = JOURNAL_FILE if config.municipality == DEFAULT_MUNICIPALITY else f"{JOURNAL_FILE}-{config.municipality}"
    return await Store.open(url, Pseudonyms(secret), retention_days=config.retention_days,
                            journal=config.data_dir / name if journal and not config.shared_store else None,
                            municipality=config.municipality, shared=config.shared_store)


async def purge_periodically(store: Store, every_s: float = 6 * 3600, cases: CaseStore | None = None) -> None:
    """The retention job: delete kept question texts past their time (and closed counsellor
    cases, bot/handover), now and every few hours."""
    while True:
        removed = await store.purge()
        if removed:
            log.info("purged %d question text(s) older than %d days", removed, store.retention_days)
        if cases is not None:
            try:
                closed = await cases.purge(store.retention_days)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("cannot purge closed cases (%s)", type(exc).__name__)
            else:
                if closed:
                    log.info("purged %d closed case(s) older than %d days", closed, store.retention_days)
        await asyncio.sleep(every_s)
