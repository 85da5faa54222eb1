"""The store: preferences, subscriptions, anonymous figures, the news outbox, sync positions.

Writes go through one write-behind queue: the caller's change is visible at once (cache) and
committed in batches by a background writer, which keeps the order of each person's changes
and retries with backoff while the database is locked, missing or restarting; nothing queued
is dropped. Reads that fail fall back to the cache and are logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.store.privacy import Pseudonyms, private_dir, private_file
from bot.store.schema import (
    events,
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


class StoreError(Exception):
    """The store cannot be used as configured (for example a malformed DATABASE_URL)."""


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
    done: asyncio.Future | None = field(default=None)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'bildungslotse.db'}"


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, engine: AsyncEngine, pseudonyms: Pseudonyms, retention_days: int = 30) -> None:
        self.engine = engine
        self.pseudonyms = pseudonyms
        self.retention_days = retention_days
        self._cache: OrderedDict[str, Prefs] = OrderedDict()
        self._queue: list[_Op] = []
        self._wake = asyncio.Event()
        self._ready = False
        self._closing = False
        self._failing = False
        self._writer: asyncio.Task | None = None
        # Keys that have a row: someone not in it has no preferences, without asking the database.
        # None until read (a database that was down at start): then every first read asks.
        self._known: set[str] | None = None

    # -- life cycle ----------------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, pseudonyms: Pseudonyms, retention_days: int = 30,
                   connect_args: dict | None = None) -> Store:
        """Connect and upgrade the schema. A database that does not answer yet is retried in the
        background (the bot answers meanwhile); a malformed URL raises StoreError."""
        try:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    private_dir(Path(path).parent)
                    private_file(Path(path))  # SQLite gives its -wal and -shm files the same mode
                engine = create_async_engine(url, connect_args={"timeout": 5, **(connect_args or {})})
            else:
                engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                                             connect_args=connect_args or {})
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot use the database URL ({exc}); expected e.g. "
                             "postgresql+asyncpg://user@host:5432/db or sqlite+aiosqlite:///path/file.db") from None
        store = cls(engine, pseudonyms, retention_days)
        await store._try_migrate()
        store._writer = asyncio.create_task(store._write_loop(), name="store-writer")
        return store

    async def _try_migrate(self) -> bool:
        if self._ready:
            return True
        try:
            async with self.engine.begin() as conn:
                if self.engine.dialect.name == "sqlite":
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                await conn.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            self._log_failure("cannot prepare the database", exc)
            return False
        self._ready = True
        try:
            async with self.engine.connect() as conn:
                self._known = set((await conn.execute(select(users.c.key))).scalars().all())
        except (SQLAlchemyError, OSError) as exc:
            self._log_failure("cannot read the list of known people", exc)
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting up to `timeout` for a database that does not answer)."""
        self._closing = True
        self._wake.set()
        if self._writer:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=timeout)
            except TimeoutError:
                self._writer.cancel()
        if self._queue:
            log.error("store: %d change(s) could not be written before shutdown", len(self._queue))
        await self.engine.dispose()

    def _log_failure(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            log.error("store: %s (%s: %s); retrying", what, type(exc).__name__, str(exc).splitlines()[0][:200])
        self._failing = True

    # -- the write-behind queue ----------------------------------------------------------
    def _enqueue(self, kind: str, values: dict[str, Any], wait: bool = False) -> asyncio.Future | None:
        future = asyncio.get_running_loop().create_future() if wait else None
        self._queue.append(_Op(kind, values, future))
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

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _write_loop(self) -> None:
        backoff = 0.2
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing and not self._queue:
                return
            await asyncio.sleep(0.002)  # let concurrent callers join this batch
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                try:
                    if not await self._try_migrate():
                        raise ConnectionError("database not ready")
                    async with self.engine.begin() as conn:
                        await self._apply(conn, batch)
                except (SQLAlchemyError, OSError, ConnectionError) as exc:
                    self._log_failure(f"cannot write {len(batch)} change(s)", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if self._failing:
                    log.warning("store: the database answers again; %d change(s) written", len(batch))
                self._failing, backoff = False, 0.2
                del self._queue[:len(batch)]
                for op in batch:
                    if op.done and not op.done.done():
                        op.done.set_result(None)

    async def _apply(self, conn: AsyncConnection, batch: list[_Op]) -> None:
        rows = [op.values for op in batch if op.kind == "event"]
        if rows:
            await conn.execute(insert(events), rows)
        texts = [op.values for op in batch if op.kind == "unanswered"]
        if texts:
            await conn.execute(insert(unanswered), texts)
        for op in batch:
            handler = _HANDLERS.get(op.kind)
            if handler:
                await handler(conn, op.values)

    # -- people --------------------------------------------------------------------------
    def key(self, transport: str, platform_id: str | int) -> str:
        return self.pseudonyms.key(transport, platform_id)

    def _remember(self, key: str, prefs: Prefs) -> None:
        if self._known is not None and prefs != Prefs():
            self._known.add(key)
        self._cache[key] = prefs
        self._cache.move_to_end(key)
        while len(self._cache) > 100_000:
            self._cache.popitem(last=False)

    async def prefs(self, key: str) -> Prefs:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._known is not None and key not in self._known:
            return Prefs()
        try:
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(users.c.language, users.c.district).where(users.c.key == key))).first()
                # a subscription always comes with a users row, so without one there is none
                topics = (await conn.execute(select(subscriptions.c.topic).where(subscriptions.c.user_key == key))
                          ).scalars().all() if row else []
        except (SQLAlchemyError, OSError) as exc:
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
        self._enqueue("user", {"key": key, "language": prefs.language, "district": prefs.district})

    async def subscribe(self, key: str, topic: str, transport: str, address: str, on: bool = True) -> None:
        prefs = await self.prefs(key)
        topics = prefs.topics | {topic} if on else prefs.topics - {topic}
        self._remember(key, replace(prefs, topics=frozenset(topics)))
        if on:
            self._enqueue("user", {"key": key, "language": prefs.language, "district": prefs.district})
            self._enqueue("subscribe", {"user_key": key, "topic": topic, "transport": transport,
                                        "address": self.pseudonyms.seal(address)})
        else:
            self._enqueue("unsubscribe", {"user_key": key, "topic": topic})

    async def forget(self, key: str, wait_s: float = 5.0) -> bool:
        """Delete everything kept about this person. The bot stops using it at once; returns
        whether the database confirmed within `wait_s` (else the deletion stays queued)."""
        self._cache.pop(key, None)
        if self._known is not None:
            self._known.discard(key)
        return await self._settle(self._enqueue("forget", {"key": key}, wait=True), wait_s)

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
            "day": _now().date(), "kind": kind, "transport": transport, "language": language,
            "topic": topic, "offer": offer, "answered": answered, "helpful": helpful, "payload": payload,
        }, wait=wait)

    def keep_unanswered(self, language: str | None, text: str) -> None:
        from bot.store.privacy import scrub

        self._enqueue("unanswered", {"created_at": _now(), "language": language, "text": scrub(text)[:1000]})

    def count_referral(self, payload: str, known: bool) -> None:
        self._enqueue("referral", {"payload": payload[:64], "known": known, "day": _now().date()})

    async def purge(self, now: datetime | None = None) -> int:
        """Delete kept question texts older than the retention period."""
        cutoff = (now or _now()) - timedelta(days=self.retention_days)
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(unanswered).where(unanswered.c.created_at < cutoff))
        except (SQLAlchemyError, OSError) as exc:
            self._log_failure("cannot purge old questions", exc)
            return 0
        return result.rowcount or 0

    # -- reading figures -----------------------------------------------------------------
    async def event_rows(self, since: date) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(events).where(events.c.day >= since))).all())

    async def unanswered_rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(unanswered.c.created_at, unanswered.c.language,
                                                   unanswered.c.text))).all())

    async def referral_rows(self) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(referrals).order_by(referrals.c.count.desc()))).all())

    async def count(self, table_name: str) -> int:
        table = {"events": events, "users": users, "subscriptions": subscriptions, "outbox": outbox,
                 "unanswered": unanswered, "referrals": referrals}[table_name]
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    # -- sync positions --------------------------------------------------------------------
    async def get_sync(self, name: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(sync_state.c.value).where(sync_state.c.name == name))).scalar()

    async def set_sync(self, name: str, value: str, wait_s: float = 5.0) -> bool:
        return await self._settle(self._enqueue("sync", {"name": name, "value": value}, wait=True), wait_s)

    # -- news outbox -----------------------------------------------------------------------
    async def enqueue_news(self, news_id: str, topic: str) -> int:
        """Fan a news item out to its topic's subscribers, once (atomically with a marker row)."""
        await self.flush()  # subscriptions still queued count too
        async with self.engine.begin() as conn:
            if (await conn.execute(select(news_enqueued.c.news_id).where(news_enqueued.c.news_id == news_id))).first():
                return 0
            rows = (await conn.execute(
                select(subscriptions.c.user_key, subscriptions.c.transport, subscriptions.c.address, users.c.language)
                .join(users, users.c.key == subscriptions.c.user_key)
                .where(subscriptions.c.topic == topic))).all()
            if rows:
                await conn.execute(insert(outbox), [
                    {"news_id": news_id, "user_key": r.user_key, "transport": r.transport, "address": r.address,
                     "language": r.language or "de"} for r in rows])
            await conn.execute(insert(news_enqueued), {"news_id": news_id, "enqueued_at": _now()})
            return len(rows)

    async def outbox_pending(self, limit: int = 100, transports: Iterable[str] | None = None) -> list[OutboxItem]:
        query = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit)
        if transports is not None:
            query = query.where(outbox.c.transport.in_(list(transports)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [OutboxItem(r.id, r.news_id, r.user_key, r.transport, self.pseudonyms.open(r.address), r.language)
                for r in rows]

    async def mark_sent(self, item_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == item_id).values(sent_at=_now()))


def _upgrade(sync_conn) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


def _upsert(conn: AsyncConnection, table, values: dict, keys: list[str], update_values: dict):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table).values(**values)
    return conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=update_values))


async def _user(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, users, {**v, "updated_at": _now()}, ["key"],
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
    await _upsert(conn, referrals, {"payload": v["payload"], "known": v["known"], "count": 1,
                                    "first_used": v["day"], "last_used": v["day"]},
                  ["payload"], {"count": referrals.c.count + 1, "last_used": v["day"]})


async def _sync(conn: AsyncConnection, v: dict) -> None:
    await _upsert(conn, sync_state, v, ["name"], {"value": v["value"]})


_HANDLERS = {"user": _user, "subscribe": _subscribe, "unsubscribe": _unsubscribe, "forget": _forget,
             "referral": _referral, "sync": _sync}
