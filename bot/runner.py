"""`bildungslotse run`: the configured platforms in one process, with the store, the news
broadcaster and the retention job; stops gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot import app
from bot.app import build_engine, open_store, purge_periodically
from bot.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.config import DEFAULT_MUNICIPALITY, Config
from bot.engine import Engine
from bot.handover.cases import CaseStore
from bot.matching import Matcher
from bot.news import Broadcaster
from bot.replicas import Leadership, replica_id
from bot.service import Service
from bot.store import Store

if TYPE_CHECKING:  # aiohttp's server is loaded only in webhook mode
    from bot.transports.webhook import WebhookServer

log = logging.getLogger(__name__)


# How many problems a refused reload names in the log and in the admin's answer; the rest are
# counted (a 20,000-offer file with a systematic mistake would otherwise log 180,000 lines).
SHOWN_PROBLEMS = 20

Build = Callable[[Path, Config], tuple[Catalogue, Matcher]]


class Runtime:
    """What the transports share: the engine (swappable catalogue) and the store."""

    def __init__(self, config: Config, catalogue_dir: Path, engine: Engine, store: Store,
                 build: Build = app.build_catalogue_and_matcher, cases: CaseStore | None = None) -> None:
        self.config, self.catalogue_dir, self.engine, self.store = config, catalogue_dir, engine, store
        self.cases = cases  # the counsellor handover's cases (bot/handover), for stats
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

    async def watch(self, every_s: float = 2.0, on_change: Callable[[], Awaitable[object]] | None = None) -> None:
        """Reload when an editor changes the catalogue; a file still being written is retried.
        Nothing ends this loop but cancellation: a watcher that died silently would never load
        a good edit again. With `on_change` (replicas), that is called instead of reloading here."""
        seen: tuple | None = None
        with contextlib.suppress(OSError):
            seen = self.fingerprint()  # before the first await: edits from now on count
        while True:
            await asyncio.sleep(every_s)
            try:
                now = self.fingerprint()  # a few stat calls: cheap enough for the loop
                if seen is not None and now != seen:
                    await (on_change() if on_change else self.reload())
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
            table = render_table(await collect(self.store, weeks=4))
            if self.cases is not None:
                from bot.handover.figures import render

                table += "\n\n" + render(await self.cases.all_cases())
            return table
        return f"Unknown admin command: {command}"


async def run_bots(config: Config, catalogue_dir: Path | None = None) -> int:
    """Every configured municipality in this process. With PostgreSQL ($DATABASE_URL), this process
    is one of possibly several replicas: updates are claimed in the store, and each city's leader
    jobs run in the one replica that holds its lease (bot/replicas.py)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    holder = replica_id()
    servers: dict[tuple[str, int], WebhookServer] = {}
    cities = [await _start_city(city, catalogue_dir if index == 0 else None, holder, servers)
              for index, city in enumerate(config.cities())]
    for server in servers.values():
        await server.start()
    workers = [task for city in cities for task in city.workers]
    if config.web.enabled:  # the editors' workbench in this process: its edits reach this engine at once
        from bot.web.serve import serve_inside

        first = cities[0]
        first.background.append(asyncio.create_task(serve_inside(config.city(None), first.runtime), name="workbench"))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, *workers}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing the updates in hand")
    for city in cities:
        for transport in city.transports:
            transport.stop()
    for task in workers:
        try:
            await asyncio.wait_for(task, 30)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway; say what happened
            log.error("%s ended with %s", task.get_name(), exc, exc_info=exc)
    for city in cities:
        for task in city.background:
            task.cancel()
        for task in city.background:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
    for server in servers.values():
        with contextlib.suppress(Exception):
            await server.stop()
    lost = 0
    for city in cities:
        for transport in city.transports:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(transport.shutdown(), 10)
        lost += await city.store.close()  # bounded; what it cannot write is kept in the journal, or reported lost
    stopped.cancel()
    return 1 if lost else 0


@dataclass
class City:
    store: Store
    runtime: Runtime
    transports: list = field(default_factory=list)
    workers: list[asyncio.Task] = field(default_factory=list)
    background: list[asyncio.Task] = field(default_factory=list)


RELOAD_SIGNAL = "catalogue-reload:"  # sync_state name + municipality: the leader's watcher saw an edit


async def _start_city(config: Config, catalogue_dir: Path | None, holder: str,
                      servers: dict[tuple[str, int], WebhookServer]) -> City:
    name = config.municipality
    catalogue_dir = catalogue_dir or config.catalogue
    engine = build_engine(config, catalogue_dir)
    store = await open_store(config)
    cases = CaseStore(store) if engine.desk is not None else None
    runtime = Runtime(config, catalogue_dir, engine, store, cases=cases)
    city = City(store, runtime)
    senders = {}
    leader_jobs: list[tuple[str, Callable[[], Awaitable[object]]]] = []
    if config.telegram.token:
        from bot.transports.telegram import TelegramTransport

        server = None
        if config.shared_store and not config.telegram.webhook_url:
            log.warning("%s: telegram polls on a shared database: run one such process only (Telegram "
                        "refuses a second poller); replicas need telegram.webhook", name)
        if config.telegram.webhook_url:
            where = (config.telegram.webhook_listen, config.telegram.webhook_port)
            if where not in servers:
                from bot.transports.webhook import WebhookServer

                servers[where] = WebhookServer(*where)
            server = servers[where]
        telegram = TelegramTransport(config.telegram, Service(engine, store, "telegram", cases), admin=runtime.admin,
                                     replicas=config.replicas, holder=holder, webhook_server=server)
        await telegram.start()
        city.transports.append(telegram)
        senders["telegram"] = telegram.send_news
        city.workers.append(asyncio.create_task(telegram.serve(), name=f"telegram:{name}"))
        log.info("%s: telegram %s as @%s", name, "webhook" if config.telegram.webhook_url else "polling",
                 telegram.username)
    if "matrix" in config.platforms:
        from bot.transports.matrix import MatrixTransport

        # Each city's Matrix device and keys in a folder of its own; Kassel's where they always were.
        folder = config.data_dir if name == DEFAULT_MUNICIPALITY else config.data_dir / "cities" / name
        matrix = MatrixTransport(config.matrix, Service(engine, store, "matrix", cases), store, folder,
                                 admin=runtime.admin, counsellors_room=config.handover.room, cases=cases)
        city.transports.append(matrix)
        senders["matrix"] = matrix.send_news

        matrix_started = asyncio.Event()

        async def sync_matrix() -> None:
            await matrix.start()
            matrix_started.set()
            await matrix.run()

        if config.shared_store:  # one Matrix sync loop per account among the replicas
            leader_jobs.append(("matrix", sync_matrix))
        else:
            city.workers.append(asyncio.create_task(sync_matrix(), name=f"matrix:{name}"))
    leader_jobs += [
        ("news", Broadcaster(store, lambda: engine.catalogue, senders).run),
        ("purge", partial(purge_periodically, store, cases=cases)),
    ]
    if cases is not None and engine.desk is not None and "matrix" in senders:
        from bot.handover.relay import Relayer

        # The counsellors' room is posted to by one replica: the one whose Matrix sync runs.
        relayer = Relayer(cases, lambda: engine.catalogue, matrix, senders, engine.desk)

        async def relay() -> None:
            await matrix_started.wait()  # the room is posted to once the bot's account is in
            await relayer.run()

        leader_jobs.append(("handover", relay))
    if config.shared_store:
        # The leader watches the files and tells every replica (itself too) to reload.
        async def signal_reload() -> None:
            await store.set_sync(RELOAD_SIGNAL + name, str(time.time_ns()), wait_s=5)

        leader_jobs.append(("catalogue-watch", partial(runtime.watch, on_change=signal_reload)))
        city.background.append(asyncio.create_task(follow_reloads(runtime, RELOAD_SIGNAL + name),
                                                   name=f"reloads:{name}"))
        leadership = Leadership(store, holder, config.replicas.lease_s)

        async def lead() -> None:
            await asyncio.gather(*(job() for _, job in leader_jobs))

        # One lease for the city's leader jobs together: the news go out through the Matrix
        # account only where its sync loop runs.
        city.background.append(asyncio.create_task(leadership.run(f"{name}:leader", lead), name=f"leader:{name}"))
    else:
        leader_jobs.append(("catalogue-watch", runtime.watch))
        city.background += [asyncio.create_task(job(), name=f"{job_name}:{name}") for job_name, job in leader_jobs
                            if job_name != "matrix"]
    return city


async def follow_reloads(runtime: Runtime, name: str, every_s: float = 2.0) -> None:
    """Reload when the leader says the catalogue changed (replicas: every one reloads itself)."""
    seen: str | None = None
    first = True
    while True:
        try:
            now = await runtime.store.get_sync(name)
            if not first and now != seen:
                await runtime.reload()
            seen, first = now, False
        except Exception as exc:  # noqa: BLE001 - the database is away: ask again
            log.debug("reload signal not readable (%s)", exc)
        await asyncio.sleep(every_s)
