"""`bildungslotse run`: the configured platforms in one process, with the store, the news
broadcaster and the retention job; stops gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from bot.app import build_engine, build_matcher, open_store, purge_periodically
from bot.catalogue import CatalogueError, load_catalogue
from bot.config import Config
from bot.engine import Engine
from bot.news import Broadcaster
from bot.service import Service
from bot.store import Store

log = logging.getLogger(__name__)


class Runtime:
    """What the transports share: the engine (swappable catalogue) and the store."""

    def __init__(self, config: Config, catalogue_dir: Path, engine: Engine, store: Store) -> None:
        self.config, self.catalogue_dir, self.engine, self.store = config, catalogue_dir, engine, store

    def reload(self) -> str:
        """Load and validate the catalogue again; swap it in only when it is valid."""
        try:
            catalogue = load_catalogue(self.catalogue_dir)
        except CatalogueError as exc:
            log.error("reload refused: the catalogue has %d problem(s); still serving %s",
                      len(exc.problems), self.engine.catalogue.version)
            for problem in exc.problems:
                log.error("  %s", problem)
            shown = "\n".join(exc.problems[:20])
            return f"Not reloaded: {len(exc.problems)} problem(s); still serving version {self.engine.catalogue.version}.\n{shown}"
        self.engine.swap(catalogue, build_matcher(catalogue, self.config.match_threshold))
        log.info("catalogue %s loaded: %d offers", catalogue.version, len(catalogue.offers))
        return f"Reloaded: version {catalogue.version}, {len(catalogue.offers)} offers, {len(catalogue.offices)} offices."

    def fingerprint(self) -> tuple:
        """Cheap change detection: names, sizes and modification times of the catalogue files."""
        return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                            for p in self.catalogue_dir.rglob("*.yaml") if p.is_file()))

    async def watch(self, every_s: float = 2.0) -> None:
        """Reload when an editor changes the catalogue; a file still being written is retried."""
        seen = self.fingerprint()
        while True:
            await asyncio.sleep(every_s)
            try:
                now = self.fingerprint()
            except OSError:
                continue  # a file replaced while we looked: next round
            if now != seen:
                seen = now
                self.reload()

    async def admin(self, command: str) -> str:
        if command == "reload":
            return self.reload()
        if command == "stats":
            from bot.stats import collect, render_table

            await self.store.flush_within(5)  # the latest figures if the database answers; never hang on it
            return render_table(await collect(self.store, weeks=4))
        return f"Unknown admin command: {command}"


async def run_bots(config: Config, catalogue_dir: Path) -> int:
    engine = build_engine(config, catalogue_dir)
    store = await open_store(config)
    runtime = Runtime(config, catalogue_dir, engine, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    senders = {}
    workers: list[asyncio.Task] = []
    transports = []
    if config.telegram.token:
        from bot.transports.telegram import TelegramTransport

        telegram = TelegramTransport(config.telegram, Service(engine, store, "telegram"), admin=runtime.admin)
        await telegram.start()
        transports.append(telegram)
        senders["telegram"] = telegram.send_news
        workers.append(asyncio.create_task(telegram.serve(), name="telegram"))
        log.info("telegram: %s as @%s", "webhook" if config.telegram.webhook_url else "polling", telegram.username)
    if "matrix" in config.platforms:
        from bot.transports.matrix import MatrixTransport

        matrix = MatrixTransport(config.matrix, Service(engine, store, "matrix"), store, config.data_dir,
                                 admin=runtime.admin)
        await matrix.start()
        transports.append(matrix)
        senders["matrix"] = matrix.send_news
        workers.append(asyncio.create_task(matrix.run(), name="matrix"))
    background = [
        asyncio.create_task(Broadcaster(store, lambda: engine.catalogue, senders).run(), name="news"),
        asyncio.create_task(purge_periodically(store), name="purge"),
        asyncio.create_task(runtime.watch(), name="catalogue-watch"),
    ]
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, *workers}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing the updates in hand")
    for transport in transports:
        transport.stop()
    for task in workers:
        try:
            await asyncio.wait_for(task, 30)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway; say what happened
            log.error("%s ended with %s", task.get_name(), exc)
    for task in background:
        task.cancel()
    for transport in transports:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(transport.shutdown(), 10)
    lost = await store.close()  # bounded; what it cannot write is kept in the journal, or reported lost
    stopped.cancel()
    return 1 if lost else 0
