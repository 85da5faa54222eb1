"""The store: preferences, subscriptions, anonymous figures, the news outbox, sync positions.

Writes go through one write-behind queue: the caller's change is visible at once (cache) and
committed in batches by a background writer, which keeps the order of each person's changes and
retries with backoff while the database is locked, missing, hanging or restarting. With a journal
(bot/store/journal.py) every accepted change is also appended to a file, so `durable()` can say
"this survives a crash" without waiting for the database; transports confirm an update to the
platform only after that. A change the database refuses (a value too long, say) is isolated,
retried a few times, logged and dropped; it never blocks the changes after it. Reads that fail
fall back to the cache and are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.store.journal import Journal
from bot.store.privacy import Pseudonyms, private_dir, private_file
from bot.store.schema import (
    answered_updates,
    events,
    leases,
    news_enqueued,
    outbox,
    referrals,
    subscriptions,
    sync_state,
    unanswered,
    users,
)

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
UNSET: Any = object()
MAX_BATCH = 2000
MAX_ATTEMPTS = 3  # a change the database refuses this often on its own is dropped
# A server that accepts connections and never answers must not hold a write (or a reply) for long.
POSTGRES_TIMEOUTS = {"timeout": 5, "command_timeout": 20}
ANSWERED_DAYS = 7  # how long answered update ids are kept (Telegram keeps updates for 24 hours)
ForgetOutcome = Literal["done", "queued", "pending"]
DEFAULT_MUNICIPALITY = "kassel"  # the city of a single-city deployment and of rows from before 0006
Claim = Literal["claimed", "answered", "busy"]


class StoreError(Exception):
    """The store cannot be used as configured (for example a malformed DATABASE_URL)."""


class StoreUnavailable(StoreError):
    """The database does not answer now (a read that has no answer in memory)."""


@dataclass(frozen=True, slots=True)
class Prefs:
    language: str | None = None
    district: str | None = None
    topics: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    news_id: str
    user_key: str
    transport: str
    address: str | None
    language: str


@dataclass(slots=True)
class _Op:
    kind: str
    values: dict[str, Any]
    done: asyncio.Future | None = field(default=None)  # True once written, False when dropped
    seq: int | None = None  # its number in the journal
    attempts: int = 0  # times the database refused it on its own


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'bildungslotse.db'}"


def _now() -> datetime:
    return datetime.now(UTC)


def reason(exc: BaseException) -> str:
    """One line about an error, also for those without a message (a TimeoutError has none)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _transient(exc: BaseException) -> bool:
    """A fault of the database or the way to it (retry), not of the change (isolate it)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    if isinstance(exc, StatementError):
        return False  # a value that cannot be sent at all
    return isinstance(exc, SQLAlchemyError | OSError | ConnectionError)


class Store:
    def __init__(self, engine: AsyncEngine, pseudonyms: Pseudonyms, retention_days: int = 30,
                 journal: Journal | None = None, sqlite_path: Path | None = None,
                 municipality: str = DEFAULT_MUNICIPALITY, shared: bool = False) -> None:
        self.engine = engine
        # Rows this store writes and reads belong to this city; other cities' rows are not seen.
        self.municipality = municipality
        # Other processes write to the same database (replicas): what this one remembers about a
        # person may be stale, so preferences are read from the database unless a change is queued.
        self.shared = shared
        self.pseudonyms = pseudonyms
        self.retention_days = retention_days
        self.journal = journal
        self.forget_wait_s = 5.0  # how long /forget waits for the database before saying "it will be done"
        self._sqlite_path = sqlite_path
        self._inode: int | None = None  # of the SQLite file we write to: a deleted file is noticed
        self._cache: OrderedDict[str, Prefs] = OrderedDict()
        self._queue: list[_Op] = []
        self._wake = asyncio.Event()
        self._pause = asyncio.Event()  # set on close: ends a backoff early
        self._ready = False
        self._closing = False
        self._close_by = 0.0
        self._failing = False
        self._compact = False  # empty the journal as soon as nothing waits (after a /forget)
        self._dropped_seq = 0
        self._writer: asyncio.Task | None = None
        # Keys that have a row: someone not in it has no preferences, without asking the database.
        # None until read (a database that was down at start): then every first read asks.
        self._known: set[str] | None = None

    # -- life cycle ----------------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, pseudonyms: Pseudonyms, retention_days: int = 30,
                   connect_args: dict | None = None, journal: Path | None = None,
                   municipality: str = DEFAULT_MUNICIPALITY, shared: bool = False) -> Store:
        """Connect and upgrade the schema. A database that does not answer yet is retried in the
        background (the bot answers meanwhile); a malformed URL raises StoreError. With `journal`,
        changes a previous run could not write are queued again first."""
        sqlite_path = None
        try:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    sqlite_path = Path(path)
                    private_dir(sqlite_path.parent)
                    private_file(sqlite_path)  # SQLite gives its -wal and -shm files the same mode
                engine = create_async_engine(url, connect_args={"timeout": 5, **(connect_args or {})})
            else:
                engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=10,
                                             connect_args={**POSTGRES_TIMEOUTS, **(connect_args or {})})
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot use the database URL ({exc}); expected e.g. "
                             "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///path/file.db") from None
        store = cls(engine, pseudonyms, retention_days, sqlite_path=sqlite_path, municipality=municipality,
                    shared=shared)
        if journal is not None:
            private_dir(journal.parent)
            store.journal = Journal(journal)
            try:
                replayed = store.journal.open()
            except OSError as exc:
                store.journal.ok = False
                log.error("store: cannot use the journal %s (%s); changes are durable only once the "
                          "database has them", journal, reason(exc))
                replayed = []
            store._queue = [_Op(e.kind, e.values, seq=e.seq) for e in replayed]
            if replayed:
                log.warning("store: %d change(s) from the journal of an earlier run to write (those already "
                            "written are recognised and skipped)", len(replayed))
        await store._try_migrate()
        store._start_writer()
        return store

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self._writer.add_done_callback(self._writer_ended)

    def _writer_ended(self, task: asyncio.Task) -> None:
        """The writer must never end early: if a bug ends it anyway, say so and start it again."""
        if task.cancelled() or self._closing:
            return
        exc = task.exception()
        log.error("store: the writer stopped (%s); starting it again, %d change(s) waiting",
                  reason(exc) if exc else "without an error", self.pending, exc_info=exc)
        self._start_writer()

    async def _try_migrate(self) -> bool:
        if self._ready:
            return True
        try:
            async with self.engine.begin() as conn:
                if self.engine.dialect.name == "sqlite":
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                await conn.run_sync(_upgrade)
        except Exception as exc:  # noqa: BLE001 - any failure here means: not ready yet, retry later
            self._log_failure("cannot prepare the database", exc)
            return False
        self._ready = True
        if self._sqlite_path is not None:
            with contextlib.suppress(OSError):
                self._inode = self._sqlite_path.stat().st_ino
        try:
            async with self.engine.connect() as conn:
                known = set((await conn.execute(select(users.c.key))).scalars().all())
        except Exception as exc:  # noqa: BLE001
            self._log_failure("cannot read the list of known people", exc)
            return True
        known |= {key for key, prefs in self._cache.items() if prefs != Prefs()}
        for op in self._queue:  # changes not written yet, in order: they decide
            if op.kind == "user":
                known.add(op.values["key"])
            elif op.kind == "forget":
                known.discard(op.values["key"])
        self._known = known
        return True

    async def close(self, timeout: float = 10.0) -> int:
        """Write what is queued, waiting at most about `timeout` seconds for a database that does not
        answer. Returns how many changes are lost: those neither written nor kept in the journal
        (which the next start writes). Never waits much longer than `timeout`."""
        loop = asyncio.get_running_loop()
        self._closing = True
        self._close_by = loop.time() + timeout
        self._wake.set()
        self._pause.set()
        if self._writer:
            try:  # the attempt in hand is bounded by the drivers' timeouts; then it stops
                await asyncio.wait_for(asyncio.shield(self._writer), timeout + 10)
            except TimeoutError:
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._writer
        left = [op for op in self._queue if op.kind != "noop"]
        kept = [op for op in left if op.seq] if self.journal is not None and await self.journal.sync() else []
        lost = len(left) - len(kept)
        if kept:
            log.warning("store: %d change(s) not written to the database before shutdown; kept in %s and "
                        "written at the next start", len(kept), self.journal.path if self.journal else "")
        if lost:
            log.error("store: %d change(s) could not be written before shutdown and are lost", lost)
        if not left and self.journal is not None:
            self.journal.compact([], force=True)
        if self.journal is not None:
            self.journal.close()
        try:
            await asyncio.wait_for(self.engine.dispose(), 5)
        except Exception as exc:  # noqa: BLE001 - shutting down: say it, do not hang on it
            log.warning("store: the database connections did not close cleanly (%s)", reason(exc))
        return lost

    def _log_failure(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            log.error("store: %s (%s); retrying", what, reason(exc))
        self._failing = True

    # -- the write-behind queue ----------------------------------------------------------
    def _enqueue(self, kind: str, values: dict[str, Any], wait: bool = False) -> asyncio.Future | None:
        future = asyncio.get_running_loop().create_future() if wait else None
        seq = self.journal.append(kind, values) if self.journal is not None and kind != "noop" else None
        self._queue.append(_Op(kind, values, future, seq))
        self._wake.set()
        return future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if self._queue and not self._closing:
            future = self._enqueue("noop", {}, wait=True)
            assert future is not None
            await future

    async def flush_within(self, seconds: float) -> bool:
        """Like flush, but give up waiting after `seconds` (the changes stay queued)."""
        try:
            await asyncio.wait_for(self.flush(), seconds)
        except TimeoutError:
            return False
        return True

    async def durable(self, wait_s: float | None = None) -> bool:
        """Whether everything accepted so far survives a crash: in the journal (one fsync), or,
        without a usable journal, committed; waits at most `wait_s` (None: as long as it takes)."""
        if self.journal is not None and self.journal.ok and await self.journal.sync():
            return True
        if wait_s is None:
            await self.flush()
            return True
        return await self.flush_within(wait_s)

    @property
    def pending(self) -> int:
        return sum(op.kind != "noop" for op in self._queue)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.2
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(0.002)  # let concurrent callers join this batch
            if await self._write_some():
                backoff = 0.2
                continue
            if self._closing and loop.time() >= self._close_by:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pause.wait(), backoff)
            backoff = min(backoff * 2, 5.0)

    async def _write_some(self) -> bool:
        """Write the next batch; False after a failure that calls for a pause."""
        batch = self._queue[:MAX_BATCH]
        try:
            await self._check_sqlite_file()
            if not await self._try_migrate():
                return False
            async with self.engine.begin() as conn:
                await self._apply(conn, batch)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the writer goes on
            if _transient(exc):
                await self._failed(f"cannot write {len(batch)} change(s)", exc)
                return False
            return await self._isolate(batch)
        self._written(batch)
        return True

    async def _isolate(self, ops: list[_Op]) -> bool:
        """The database refused a batch: find the change it refuses by halving, write the others in
        order, and drop that change after MAX_ATTEMPTS. False when a pause is needed."""
        try:
            async with self.engine.begin() as conn:
                await self._apply(conn, ops)
        except Exception as exc:  # noqa: BLE001
            if _transient(exc):
                await self._failed(f"cannot write {len(ops)} change(s)", exc)
                return False
            if len(ops) > 1:
                half = len(ops) // 2
                return await self._isolate(ops[:half]) and await self._isolate(ops[half:])
            return await self._refused(ops[0], exc)
        self._written(ops)
        return True

    async def _refused(self, op: _Op, exc: BaseException) -> bool:
        try:  # is it the change, or the database as a whole (tables gone, say)?
            async with self.engine.connect() as conn:
                await conn.execute(select(sync_state.c.name).limit(1))
        except Exception as probe:  # noqa: BLE001
            await self._failed("cannot write (the database itself fails)", probe)
            return False
        op.attempts += 1
        if op.attempts < MAX_ATTEMPTS:
            log.warning("store: the database refuses a '%s' change (%s); trying it again", op.kind, reason(exc))
            return False
        log.error("store: dropped a '%s' change the database refused %d times (%s); the changes after it "
                  "are written", op.kind, op.attempts, reason(exc))
        assert self._queue[0] is op
        del self._queue[0]
        self._dropped_seq = max(self._dropped_seq, op.seq or 0)
        if op.done and not op.done.done():
            op.done.set_result(False)
        return True

    async def _failed(self, what: str, exc: BaseException) -> None:
        self._log_failure(what, exc)
        if self._sqlite_path is not None:
            # A connection opened while the file was read-only stays read-only: open new ones.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.engine.dispose(), 5)

    def _written(self, ops: list[_Op]) -> None:
        if self._failing:
            log.warning("store: the database answers again; %d change(s) written", len(ops))
        self._failing = False
        assert self._queue[0] is ops[0]  # written in order: always the front of the queue
        del self._queue[:len(ops)]
        for op in ops:
            if op.done and not op.done.done():
                op.done.set_result(True)
        if self.journal is not None and not self._queue:
            self.journal.compact([], force=self._compact)
            self._compact = False

    async def _check_sqlite_file(self) -> None:
        """A deleted SQLite file takes writes into nowhere (the open connection writes to the
        unlinked file): notice it, say so, and write to a new file there."""
        path = self._sqlite_path
        if path is None or self._inode is None:
            return
        try:
            inode: int | None = path.stat().st_ino
        except FileNotFoundError:
            inode = None
        if inode == self._inode:
            return
        if inode is None:
            log.error("store: the database file %s was deleted while the bot ran: what it held is lost. A new "
                      "one is started there; the %d waiting change(s) go into it", path, self.pending)
        else:
            log.error("store: the database file %s was replaced while the bot ran; writing to the new file", path)
        self._inode, self._ready = None, False
        await asyncio.wait_for(self.engine.dispose(), 5)
        if inode is None:
            private_file(path)

    async def _apply(self, conn: AsyncConnection, batch: list[_Op]) -> None:
        journal = self.journal
        applied = 0
        if journal is not None and any(op.seq for op in batch):
            # Exactly once: changes of the journal that a crashed run already wrote are skipped.
            applied = int((await conn.execute(select(sync_state.c.value).where(
                sync_state.c.name == journal.marker))).scalar() or 0)
        todo = [op for op in batch if not (op.seq and op.seq <= applied)]
        # changes journaled before 0006 name no city: they were Kassel's
        city = {"municipality": DEFAULT_MUNICIPALITY}
        rows = [city | op.values for op in todo if op.kind == "event"]
        if rows:
            await conn.execute(insert(events), rows)
        texts = [city | op.values for op in todo if op.kind == "unanswered"]
        if texts:
            await conn.execute(insert(unanswered), texts)
        for op in todo:
            handler = _HANDLERS.get(op.kind)
            if handler:
                await handler(conn, op.values)
        if journal is not None:
            upto = max([op.seq or 0 for op in batch] + [self._dropped_seq])
            if upto > applied:
                await _sync(conn, {"name": journal.marker, "value": str(upto)})

    # -- people --------------------------------------------------------------------------
    def key(self, transport: str, platform_id: str | int) -> str:
        # Another city's bot is another relationship: its own key, preferences and subscriptions.
        # Kassel's keys stay what they were before there were several cities.
        if self.municipality != DEFAULT_MUNICIPALITY:
            transport = f"{transport}@{self.municipality}"
        return self.pseudonyms.key(transport, platform_id)

    def _remember(self, key: str, prefs: Prefs) -> None:
        if self._known is not None and prefs != Prefs():
            self._known.add(key)
        self._cache[key] = prefs
        self._cache.move_to_end(key)
        while len(self._cache) > 100_000:
            self._cache.popitem(last=False)

    async def prefs(self, key: str) -> Prefs:
        if self.shared and key in self._cache and not any(op.values.get("key", op.values.get("user_key")) == key
                                                          for op in self._queue):
            del self._cache[key]  # another replica may have changed it: ask the database
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._known is not None and key not in self._known and not self.shared:
            return Prefs()
        if self._failing:
            return Prefs()  # the database is known to be down: answer now, not after its timeouts
        last = next((op.kind for op in reversed(self._queue)
                     if op.kind in ("user", "forget") and op.values["key"] == key), None)
        if last == "forget":
            return Prefs()  # forgotten, the database just does not know yet
        try:
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(users.c.language, users.c.district).where(users.c.key == key))).first()
                # a subscription always comes with a users row, so without one there is none
                topics = (await conn.execute(select(subscriptions.c.topic).where(subscriptions.c.user_key == key))
                          ).scalars().all() if row else []
        except Exception as exc:  # noqa: BLE001 - a reply must not fail for want of preferences
            self._log_failure("cannot read preferences", exc)
            return Prefs()
        prefs = Prefs(row.language, row.district, frozenset(topics)) if row else Prefs()
        self._remember(key, prefs)
        return prefs

    async def set_prefs(self, key: str, language: str | None = UNSET, district: str | None = UNSET) -> None:
        prefs = await self.prefs(key)
        changes = {}
        if language is not UNSET:
            changes["language"] = language
        if district is not UNSET:
            changes["district"] = district
        prefs = replace(prefs, **changes)
        self._remember(key, prefs)
        self._enqueue("user", {"key": key, "language": prefs.language, "district": prefs.district,
                               "municipality": self.municipality})

    async def subscribe(self, key: str, topic: str, transport: str, address: str, on: bool = True) -> None:
        prefs = await self.prefs(key)
        topics = prefs.topics | {topic} if on else prefs.topics - {topic}
        self._remember(key, replace(prefs, topics=frozenset(topics)))
        if on:
            self._enqueue("user", {"key": key, "language": prefs.language, "district": prefs.district,
                                   "municipality": self.municipality})
            self._enqueue("subscribe", {"user_key": key, "topic": topic, "transport": transport,
                                        "address": self.pseudonyms.seal(address)})
        else:
            self._enqueue("unsubscribe", {"user_key": key, "topic": topic})

    async def forget(self, key: str, wait_s: float | None = None) -> ForgetOutcome:
        """Delete everything kept about this person; the bot stops using it at once. "done": the
        database confirmed within `wait_s`; "queued": not yet, but the deletion is in the journal and
        survives a crash; "pending": only in memory (no usable journal, database down)."""
        self._cache.pop(key, None)
        if self._known is not None:
            self._known.discard(key)
        future = self._enqueue("forget", {"key": key}, wait=True)
        journaled = self._queue[-1].seq is not None  # the op just queued
        self._compact = True  # the journal's older changes for this person go too, once written
        if await self._settle(future, self.forget_wait_s if wait_s is None else wait_s) and future.result():
            return "done"
        return "queued" if journaled and self.journal is not None and await self.journal.sync() else "pending"

    @staticmethod
    async def _settle(future: asyncio.Future | None, wait_s: float) -> bool:
        assert future is not None
        try:
            await asyncio.wait_for(asyncio.shield(future), wait_s)
        except TimeoutError:
            return False
        return True

    # -- anonymous figures ---------------------------------------------------------------
    def record(self, kind: str, transport: str, language: str | None = None, topic: str | None = None,
               offer: str | None = None, answered: bool | None = None, helpful: bool | None = None,
               payload: str | None = None, wait: bool = False) -> asyncio.Future | None:
        return self._enqueue("event", {
            "day": _now().date(), "municipality": self.municipality, "kind": kind, "transport": transport, "language": language,
            "topic": topic, "offer": offer, "answered": answered, "helpful": helpful, "payload": payload,
        }, wait=wait)

    def keep_unanswered(self, language: str | None, text: str) -> None:
        from bot.store.privacy import scrub

        self._enqueue("unanswered", {"created_at": _now(), "municipality": self.municipality, "language": language, "text": scrub(text)[:1000]})

    def count_referral(self, payload: str, known: bool) -> None:
        self._enqueue("referral", {"payload": payload[:64], "known": known, "day": _now().date(),
                                   "municipality": self.municipality})

    async def purge(self, now: datetime | None = None) -> int:
        """Delete kept question texts older than the retention period (and old answered update ids)."""
        now = now or _now()
        cutoff = now - timedelta(days=self.retention_days)
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(unanswered).where(unanswered.c.created_at < cutoff))
                await conn.execute(delete(answered_updates).where(
                    answered_updates.c.answered_at < now - timedelta(days=ANSWERED_DAYS)))
                await conn.execute(delete(answered_updates).where(  # claims never answered (a lost update)
                    answered_updates.c.answered_at.is_(None),
                    answered_updates.c.lease_until < now - timedelta(days=ANSWERED_DAYS)))
        except Exception as exc:  # noqa: BLE001 - the retention job tries again later
            self._log_failure("cannot purge old questions", exc)
            return 0
        return result.rowcount or 0

    # -- answered updates ----------------------------------------------------------------
    def mark_answered(self, transport: str, update_id: str | int) -> None:
        """Remember that a platform update (Telegram update id, Matrix event id) was answered."""
        self._enqueue("answered", {"transport": transport, "update_id": str(update_id), "answered_at": _now()})

    async def answered(self, transport: str, update_ids: Iterable[str | int]) -> set[str]:
        """Which of these updates were answered already (by this process or one before it)."""
        wanted = {str(i) for i in update_ids}
        found = {op.values["update_id"] for op in self._queue
                 if op.kind == "answered" and op.values["transport"] == transport and op.values["update_id"] in wanted}
        rest = wanted - found
        if rest and not self._failing:
            try:
                async with self.engine.connect() as conn:
                    found |= set((await conn.execute(select(answered_updates.c.update_id).where(
                        answered_updates.c.transport == transport, answered_updates.c.answered_at.is_not(None),
                        answered_updates.c.update_id.in_(rest)))).scalars().all())
            except Exception as exc:  # noqa: BLE001 - then only what is in memory counts
                self._log_failure("cannot read answered updates", exc)
        return found

    async def claim(self, transport: str, update_id: str | int, holder: str, lease_s: float) -> Claim:
        """Take an update to answer it, in the database, for `lease_s` seconds: "claimed" (answer it,
        then finish()), "answered" (another replica did), or "busy" (another replica holds it now; if
        that one dies, its lease runs out and the update may be claimed again)."""
        now = _now()
        values = {"transport": transport, "update_id": str(update_id), "claimed_by": holder,
                  "lease_until": now + timedelta(seconds=lease_s), "answered_at": None}
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            statement = dialect_insert(answered_updates).values(**values)
            taken = (await conn.execute(statement.on_conflict_do_update(
                index_elements=["transport", "update_id"],
                set_={"claimed_by": holder, "lease_until": values["lease_until"]},
                where=answered_updates.c.answered_at.is_(None) & (answered_updates.c.lease_until < now),
            ).returning(answered_updates.c.update_id))).first()
            if taken:
                return "claimed"
            answered_at = (await conn.execute(select(answered_updates.c.answered_at).where(
                answered_updates.c.transport == transport,
                answered_updates.c.update_id == str(update_id)))).scalar()
        return "answered" if answered_at is not None else "busy"

    async def extend(self, transport: str, update_id: str | int, holder: str, lease_s: float) -> bool:
        """Keep a claim while its answer takes long (a slow send, retries): False if it was lost."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(answered_updates).where(
                answered_updates.c.transport == transport, answered_updates.c.update_id == str(update_id),
                answered_updates.c.claimed_by == holder, answered_updates.c.answered_at.is_(None),
            ).values(lease_until=_now() + timedelta(seconds=lease_s)))
        return bool(result.rowcount)

    async def finish(self, transport: str, update_id: str | int) -> None:
        """The claimed update is answered: no replica answers it again."""
        async with self.engine.begin() as conn:
            await conn.execute(update(answered_updates).where(
                answered_updates.c.transport == transport, answered_updates.c.update_id == str(update_id)
            ).values(answered_at=_now(), lease_until=None))

    async def release(self, transport: str, update_id: str | int) -> None:
        """The claimed update could not be answered now (its reply did not get through): the next
        delivery of it may be claimed at once, by any replica."""
        async with self.engine.begin() as conn:
            await conn.execute(update(answered_updates).where(
                answered_updates.c.transport == transport, answered_updates.c.update_id == str(update_id),
                answered_updates.c.answered_at.is_(None)).values(lease_until=_now()))

    # -- leader leases -----------------------------------------------------------------------
    async def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `ttl_s` seconds; False while another holder's lease runs."""
        now = _now()
        until = now + timedelta(seconds=ttl_s)
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            statement = dialect_insert(leases).values(name=name, holder=holder, expires_at=until)
            held = (await conn.execute(statement.on_conflict_do_update(
                index_elements=["name"], set_={"holder": holder, "expires_at": until},
                where=(leases.c.holder == holder) | (leases.c.expires_at < now),
            ).returning(leases.c.name))).first()
        return held is not None

    async def drop_lease(self, name: str, holder: str) -> None:
        """Give a lease up (a graceful stop): another replica takes over without waiting it out."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    async def lease_holder(self, name: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(leases.c.holder).where(
                leases.c.name == name, leases.c.expires_at >= _now()))).scalar()

    # -- reading figures -----------------------------------------------------------------
    async def event_rows(self, since: date) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(events).where(
                events.c.day >= since, events.c.municipality == self.municipality))).all())

    async def unanswered_rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(unanswered.c.created_at, unanswered.c.language,
                                                   unanswered.c.text).where(
                unanswered.c.municipality == self.municipality))).all())

    async def referral_rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(referrals).where(referrals.c.municipality == self.municipality)
                                            .order_by(referrals.c.count.desc()))).all())

    async def count(self, table_name: str) -> int:
        table = {"events": events, "users": users, "subscriptions": subscriptions, "outbox": outbox,
                 "unanswered": unanswered, "referrals": referrals, "answered_updates": answered_updates}[table_name]
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    # -- sync positions --------------------------------------------------------------------
    async def get_sync(self, name: str) -> str | None:
        """The position stored last (a newer one still queued counts); StoreUnavailable when the
        database does not answer, since None would mean "never stored"."""
        name = self._scoped(name)
        for op in reversed(self._queue):
            if op.kind == "sync" and op.values["name"] == name:
                return op.values["value"]
        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(select(sync_state.c.value).where(sync_state.c.name == name))).scalar()
        except Exception as exc:  # noqa: BLE001
            raise StoreUnavailable(f"cannot read the sync position '{name}' ({reason(exc)})") from exc

    async def set_sync(self, name: str, value: str, wait_s: float | None = None) -> bool:
        """Store a position; whether it (and everything accepted before it) is durable within `wait_s`."""
        self._enqueue("sync", {"name": self._scoped(name), "value": value})
        return await self.durable(wait_s)

    def _scoped(self, name: str) -> str:
        """Each city's positions (its Matrix account's sync token) apart; Kassel's names unchanged."""
        return name if self.municipality == DEFAULT_MUNICIPALITY else f"{self.municipality}:{name}"

    # -- news outbox -----------------------------------------------------------------------
    async def enqueue_news(self, news_id: str, topic: str) -> int:
        """Fan a news item out to its topic's subscribers, once (atomically with a marker row)."""
        await self.flush()  # subscriptions still queued count too
        async with self.engine.begin() as conn:
            city = self.municipality
            if (await conn.execute(select(news_enqueued.c.news_id).where(
                    news_enqueued.c.news_id == news_id, news_enqueued.c.municipality == city))).first():
                return 0
            rows = (await conn.execute(
                select(subscriptions.c.user_key, subscriptions.c.transport, subscriptions.c.address, users.c.language)
                .join(users, users.c.key == subscriptions.c.user_key)
                .where(subscriptions.c.topic == topic, users.c.municipality == city))).all()
            if rows:
                await conn.execute(insert(outbox), [
                    {"news_id": news_id, "municipality": city, "user_key": r.user_key, "transport": r.transport,
                     "address": r.address, "language": r.language or "de"} for r in rows])
            await conn.execute(insert(news_enqueued), {"news_id": news_id, "municipality": city,
                                                       "enqueued_at": _now()})
            return len(rows)

    async def outbox_pending(self, limit: int = 100, transports: Iterable[str] | None = None) -> list[OutboxItem]:
        query = select(outbox).where(outbox.c.sent_at.is_(None), outbox.c.municipality == self.municipality
                                     ).order_by(outbox.c.id).limit(limit)
        if transports is not None:
            query = query.where(outbox.c.transport.in_(list(transports)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [OutboxItem(r.id, r.news_id, r.user_key, r.transport, self.pseudonyms.open(r.address), r.language)
                for r in rows]

    async def mark_sent(self, item_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == item_id).values(sent_at=_now()))


def _upgrade(sync_conn, revision: str = "head") -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_conn
    command.upgrade(config, revision)


def _upsert(conn: AsyncConnection, table, values: dict, keys: list[str], update_values: dict):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table).values(**values)
    return conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=update_values))


async def _user(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, users, {"municipality": DEFAULT_MUNICIPALITY, **v, "updated_at": _now()}, ["key"],
                  {"language": v["language"], "district": v["district"], "updated_at": _now()})


async def _subscribe(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, subscriptions, v, ["user_key", "topic"],
                  {"transport": v["transport"], "address": v["address"]})


async def _unsubscribe(conn: AsyncConnection, v: dict) -> None:
    await conn.execute(delete(subscriptions).where(subscriptions.c.user_key == v["user_key"],
                                                   subscriptions.c.topic == v["topic"]))


async def _forget(conn: AsyncConnection, v: dict) -> None:
    await conn.execute(delete(outbox).where(outbox.c.user_key == v["key"]))
    await conn.execute(delete(subscriptions).where(subscriptions.c.user_key == v["key"]))
    await conn.execute(delete(users).where(users.c.key == v["key"]))


async def _referral(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, referrals, {"municipality": v.get("municipality", DEFAULT_MUNICIPALITY),
                                    "payload": v["payload"], "known": v["known"], "count": 1,
                                    "first_used": v["day"], "last_used": v["day"]},
                  ["municipality", "payload"], {"count": referrals.c.count + 1, "last_used": v["day"]})


async def _sync(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, sync_state, v, ["name"], {"value": v["value"]})


async def _answered(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, answered_updates, v, ["transport", "update_id"], {"answered_at": v["answered_at"]})


_HANDLERS = {"user": _user, "subscribe": _subscribe, "unsubscribe": _unsubscribe, "forget": _forget,
             "referral": _referral, "sync": _sync, "answered": _answered}
