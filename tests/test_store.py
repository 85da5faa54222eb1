"""The store on SQLite and PostgreSQL: the same tests against both."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.bench_store import POSTGRES_URL, drop_schema, postgres_schema
from bot.store import Pseudonyms, SecretError, Store, StoreError, load_secret, scrub, sqlite_url

SECRET = b"test-secret"


@pytest.fixture(params=["sqlite", "postgres"])
async def target(request, tmp_path):
    """(url, connect_args) of an empty database; PostgreSQL in a schema of its own, used
    whenever a server answers (CI starts one)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/data/bot.db", None
        return
    made = await postgres_schema()
    if made is None:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL}")
    yield POSTGRES_URL, made[1]
    await drop_schema(made[0])


async def open_store(target) -> Store:
    url, connect_args = target
    return await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args)


async def test_preferences_survive_a_restart(target):
    store = await open_store(target)
    key = store.key("telegram", 4711)
    await store.set_prefs(key, language="fa")
    await store.set_prefs(key, district="Wesertor")
    await store.subscribe(key, "daycare", "telegram", "4711")
    await store.close()
    again = await open_store(target)
    prefs = await again.prefs(again.key("telegram", 4711))
    assert (prefs.language, prefs.district, prefs.topics) == ("fa", "Wesertor", frozenset({"daycare"}))
    await again.close()


async def test_forget_deletes_everything_about_a_person(target):
    store = await open_store(target)
    key, other = store.key("matrix", "@a:x"), store.key("matrix", "@b:x")
    for k in (key, other):
        await store.set_prefs(k, language="uk")
        await store.subscribe(k, "school", "matrix", "!room:x")
    await store.flush()
    assert await store.enqueue_news("n1", "school") == 2
    assert await store.forget(key)
    store._cache.clear()
    assert (await store.prefs(key)).language is None
    assert (await store.prefs(other)).language == "uk"
    assert await store.count("users") == 1 and await store.count("subscriptions") == 1
    assert [i.user_key for i in await store.outbox_pending()] == [other]
    await store.close()


async def test_no_platform_id_or_name_reaches_the_database(target):
    store = await open_store(target)
    key = store.key("telegram", 987654321)
    await store.set_prefs(key, language="ar")
    await store.subscribe(key, "parents", "telegram", "987654321")
    store.record("question", "telegram", "ar", "parents", "familienzentrum-wehlheiden", True)
    store.keep_unanswered("ar", "call me at 0151 98765432 or mail ali@example.org, id 987654321")
    await store.flush()
    dump = []
    async with store.engine.connect() as conn:
        for table in ("users", "subscriptions", "events", "unanswered", "outbox"):
            dump += [repr(tuple(row)) for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
    everything = "\n".join(dump)
    assert "987654321" not in everything and "ali@example.org" not in everything and "0151" not in everything
    assert key == Pseudonyms(SECRET).key("telegram", 987654321) != Pseudonyms(b"other").key("telegram", 987654321)
    await store.close()


async def test_unanswered_questions_are_purged_after_the_retention_period(target):
    store = await open_store(target)
    store.keep_unanswered("de", "Wo kann ich Schach spielen?")
    await store.flush()
    assert await store.purge() == 0
    assert await store.purge(now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert await store.count("unanswered") == 0
    await store.close()


async def test_referrals_are_counted_per_payload(target):
    store = await open_store(target)
    for payload in ("ar-daycare", "ar-daycare", "tr-school", "zz-broken"):
        store.count_referral(payload, known=payload != "zz-broken")
    await store.flush()
    rows = {r.payload: (r.count, r.known) for r in await store.referral_rows()}
    assert rows == {"ar-daycare": (2, True), "tr-school": (1, True), "zz-broken": (1, False)}
    await store.close()


async def test_news_is_enqueued_once_and_delivered_in_order(target):
    store = await open_store(target)
    for n in range(5):
        k = store.key("telegram", n)
        await store.set_prefs(k, language="ro")
        await store.subscribe(k, "daycare", "telegram", str(n))
    await store.flush()
    assert await store.enqueue_news("kita-news", "daycare") == 5
    assert await store.enqueue_news("kita-news", "daycare") == 0
    pending = await store.outbox_pending()
    assert [p.address for p in pending] == [str(n) for n in range(5)]
    await store.mark_sent(pending[0].id)
    assert len(await store.outbox_pending()) == 4
    await store.close()


async def test_sync_positions(target):
    store = await open_store(target)
    assert await store.get_sync("telegram.offset") is None
    await store.set_sync("telegram.offset", "41")
    await store.set_sync("telegram.offset", "42")
    assert await store.get_sync("telegram.offset") == "42"
    await store.close()


@pytest.fixture
async def postgres_target():
    made = await postgres_schema()
    if made is None:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL}")
    yield POSTGRES_URL, made[1]
    await drop_schema(made[0])


async def test_dropped_postgres_connections_are_survived(postgres_target):
    """Every server connection killed under the store (as in a PostgreSQL restart): retried, nothing lost."""
    url, _ = postgres_target
    store = await open_store(postgres_target)
    key = store.key("telegram", 1)
    await store.set_prefs(key, language="bg")
    await store.flush()
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    await admin.dispose()
    for _ in range(20):
        store.record("question", "telegram", "bg", "school", None, False)
    await store.set_prefs(key, district="Waldau")
    await store.flush()
    assert await store.count("events") == 20
    store._cache.clear()
    assert (await store.prefs(key)).district == "Waldau"
    await store.close()


async def test_a_locked_sqlite_file_delays_but_loses_nothing(tmp_path, caplog):
    path = tmp_path / "bot.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", Pseudonyms(SECRET), connect_args={"timeout": 0.1})
    key = store.key("terminal", "x")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR):
        await store.set_prefs(key, language="pl")
        for _ in range(10):
            store.record("question", "terminal", "pl", "school", None, True)
        assert not await store.flush_within(1.0)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert store.pending > 0
    blocker.execute("ROLLBACK")
    blocker.close()
    await store.flush()
    assert await store.count("events") == 10
    store._cache.clear()
    assert (await store.prefs(key)).language == "pl"
    await store.close()


async def test_unreachable_database_keeps_the_bot_answering(caplog):
    with caplog.at_level(logging.ERROR):
        store = await Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/none", Pseudonyms(SECRET))
        await store.set_prefs(store.key("telegram", 5), language="de")
        assert (await store.prefs(store.key("telegram", 5))).language == "de"  # served from memory
        assert not await store.flush_within(0.5)
        await store.close(timeout=0.5)
    assert any("cannot" in r.getMessage() for r in caplog.records)


def test_malformed_database_url_is_a_clear_error():
    with pytest.raises(StoreError, match="cannot use the database URL"):
        asyncio.run(Store.open("nosuchdb://x", Pseudonyms(SECRET)))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ruf mich an: +49 561 1234567", "Ruf mich an: [phone]"),
        ("mail: fatima.k@web.de bitte", "mail: [e-mail] bitte"),
        ("Aktenzeichen 20231234", "Aktenzeichen [phone]"),
        ("Kundennummer 12345", "Kundennummer [number]"),
        ("Kind ist 4, B1 Kurs 2026", "Kind ist 4, B1 Kurs 2026"),
    ],
)
def test_scrub(raw, clean):
    assert scrub(raw) == clean


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_data_folder_secret_and_database_are_private_from_the_start(tmp_path, monkeypatch):
    monkeypatch.delenv("BILDUNGSLOTSE_SECRET", raising=False)
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)  # no later chmod may be what makes them private
    umask = os.umask(0o022)
    try:
        data = tmp_path / "data"
        secret = load_secret(data)
        store = await Store.open(sqlite_url(data), Pseudonyms(secret))
        await store.set_prefs(store.key("terminal", 1), language="de")
        await store.flush()
        files = sorted(p.name for p in data.iterdir())
        modes = {p.name: _mode(p) for p in data.iterdir()}
        await store.close()
    finally:
        os.umask(umask)
    assert _mode(data) == 0o700 and len(secret) >= 32
    assert "bildungslotse.db" in files and "secret.key" in files
    assert all(mode == 0o600 for mode in modes.values()), modes


@pytest.mark.parametrize("value", ["", "s", "x" * 31])
def test_a_short_secret_is_refused_with_one_sentence(tmp_path, monkeypatch, value):
    monkeypatch.setenv("BILDUNGSLOTSE_SECRET", value)
    with pytest.raises(SecretError, match="BILDUNGSLOTSE_SECRET is too short .* at least 32"):
        load_secret(tmp_path)
    monkeypatch.delenv("BILDUNGSLOTSE_SECRET")
    (tmp_path / "secret.key").write_text(value)
    with pytest.raises(SecretError, match="secret.key holds a secret .* too short"):
        load_secret(tmp_path)
