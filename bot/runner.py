"""`bildungslotse run`: the configured platforms in one process, with the store, the news
broadcaster and the retention job; stops gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from bot import app
from bot.app import build_engine, open_store, purge_periodically
from bot.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.config import Config
from bot.engine import Engine
from bot.matching import Matcher
from bot.news import Broadcaster
from bot.service import Service
from bot.store import Store

log = logging.getLogger(__name__)


# How many problems a refused reload names in the log and in the admin's answer; the rest are
# counted (a 20,000-offer file with a systematic mistake would otherwise log 180,000 lines).
SHOWN_PROBLEMS = 20

Build = Callable[[Path, Config], tuple[Catalogue, Matcher]]


class Runtime:
    """What the transports share: the engine (swappable catalogue) and the store."""

    def __init__(self, config: Config, catalogue_dir: Path, engine: Engine, store: Store,
                 build: Build = app.build_catalogue_and_matcher) -> None:
        self.config, self.catalogue_dir, self.engine, self.store = config, catalogue_dir, engine, store
        self.build = build
        # The watcher and an admin's /reload may ask at once: one build at a time, each reading
        # the files as they are when it starts.
        self._reloading = asyncio.Lock()

    async def reload(self) -> str:
        """Load, validate and build the matcher in a worker thread, then swap both in on the
        event loop, between two messages. Always an answer, never an exception: the old
        catalogue keeps serving whatever goes wrong."""
        async with self._reloading:
            serving = self.engine.catalogue.version
            before = (self.engine.catalogue, self.engine.matcher)
            try:
                if self.build is app.build_catalogue_and_matcher:
                    await self._texts_first()
                # A thread, not a process: the model's MappingProxyType tables do not pickle, and
                # the matcher must live where it serves. The loop keeps answering meanwhile.
                catalogue, matcher = await asyncio.to_thread(
                    self.build, self.catalogue_dir, self.config)
            except CatalogueError as exc:
                self.engine.swap(*before)  # the texts served first too, should the files have changed since
                count, shown = len(exc.problems), exc.problems[:SHOWN_PROBLEMS]
                if count > len(shown):
                    shown = [*shown, f"… and {count - len(shown)} more (bildungslotse validate lists all)"]
                log.error("reload refused: %d problem(s) in the catalogue; still serving %s\n  %s",
                          count, serving, "\n  ".join(shown))
                return f"Not reloaded: {count} problem(s); still serving version {serving}.\n" + "\n".join(shown)
            except Exception as exc:  # noqa: BLE001 - MemoryError, a bug: logged, answered, survived
                self.engine.swap(*before)
                log.exception("reload failed (%s); still serving %s", type(exc).__name__, serving)
                return f"Not reloaded: {type(exc).__name__} while building the catalogue; still serving version {serving}."
            self.engine.swap(catalogue, matcher)
        log.info("catalogue %s loaded: %d offers", catalogue.version, len(catalogue.offers))
        return f"Reloaded: version {catalogue.version}, {len(catalogue.offers)} offers, {len(catalogue.offices)} offices."

    async def _texts_first(self) -> None:
        """A changed text is served as soon as the catalogue is validated (a second or so): the
        ranker in use keeps ranking while the new one trains, when the offers are the same ones
        (an edit from the workbench). A catalogue with problems raises here, and is refused."""
        catalogue = await asyncio.to_thread(load_catalogue, self.catalogue_dir)
        if catalogue.offers.keys() == self.engine.catalogue.offers.keys():
            self.engine.swap(catalogue, self.engine.matcher)

    def fingerprint(self) -> tuple:
        """Cheap change detection: names, kinds, sizes and modification times of everything named
        *.yaml, a broken link or a folder too (the reload then says what is wrong with it)."""
        entries = []
        for path in self.catalogue_dir.rglob("*.yaml"):
            try:
                info = path.stat()
            except FileNotFoundError:
                info = path.lstat()  # a broken link
            entries.append((str(path), info.st_mode, info.st_size, info.st_mtime_ns))
        return tuple(sorted(entries))

    async def watch(self, every_s: float = 2.0) -> None:
        """Reload when an editor changes the catalogue; a file still being written is retried.
        Nothing ends this loop but cancellation: a watcher that died silently would never load
        a good edit again."""
        seen: tuple | None = None
        with contextlib.suppress(OSError):
            seen = self.fingerprint()  # before the first await: edits from now on count
        while True:
            await asyncio.sleep(every_s)
            try:
                now = self.fingerprint()  # a few stat calls: cheap enough for the loop
                if seen is not None and now != seen:
                    await self.reload()
                seen = now
            except OSError:
                pass  # a file replaced while we looked: next round
            except Exception:  # noqa: BLE001 - say so, and keep watching
                log.exception("catalogue watcher: an unexpected error; still serving %s, watching on",
                              self.engine.catalogue.version)

    async def admin(self, command: str) -> str:
        if command == "reload":
            return await self.reload()
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
    if config.web.enabled:  # the editors' workbench in this process: its edits reach this engine at once
        from bot.web.serve import serve_inside

        background.append(asyncio.create_task(serve_inside(config, runtime), name="workbench"))
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
