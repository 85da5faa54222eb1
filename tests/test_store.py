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

from bot.store import Pseudonyms, SecretError, Store, StoreError, load_secret, scrub, sqlite_url

SECRET = b"test-secret"


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


# -- faults: a hanging server, a refused change, crashes, vanishing and read-only files ---------------
async def test_a_postgres_that_accepts_but_never_answers(postgres_target, caplog):
    """The audit: the writer died silently on the TimeoutError (an empty message) and never wrote again."""
    from tests.tcp_proxy import TcpProxy

    url, connect_args = postgres_target
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    proxy = await TcpProxy(port, hang=True).start()
    hung_url = url.replace(f":{port}/", f":{proxy.port}/")
    try:
        with caplog.at_level(logging.ERROR):
            store = await Store.open(hung_url, Pseudonyms(SECRET),
                                     connect_args={**connect_args, "timeout": 1, "command_timeout": 1})
            key = store.key("telegram", 7)
            await store.set_prefs(key, language="ro")
            for _ in range(5):
                store.record("question", "telegram", "ro", "school", None, True)
            assert not await store.flush_within(2.5)
        assert any("TimeoutError" in r.getMessage() for r in caplog.records)
        assert store._writer is not None and not store._writer.done()
        proxy.hang = False  # the network returns
        await asyncio.wait_for(store.flush(), 60)
        assert await store.count("events") == 5
        proxy.hang = True  # and stalls again, now under open connections
        for _ in range(3):
            store.record("question", "telegram", "ro", "school", None, True)
        assert not await store.flush_within(2.5)
        proxy.hang = False
        await asyncio.wait_for(store.flush(), 60)
        assert await store.count("events") == 8
        store._cache.clear()
        assert (await store.prefs(key)).language == "ro"
        await store.close()
    finally:
        await proxy.stop()


async def test_a_change_the_database_refuses_does_not_block_the_others(target, caplog):
    store = await open_store(target)
    keep, gone = store.key("telegram", 1), store.key("telegram", 2)
    await store.set_prefs(gone, language="fa")
    await store.flush()
    store.record(None, "telegram")  # type: ignore[arg-type] - events.kind is NOT NULL: refused forever
    await store.set_prefs(keep, language="tr")
    for _ in range(3):
        store.record("question", "telegram", "tr", "school", None, True)
    with caplog.at_level(logging.ERROR):
        assert await store.forget(gone, wait_s=30) == "done"
    await asyncio.wait_for(store.flush(), 30)
    assert any("dropped a 'event' change" in r.getMessage() for r in caplog.records)
    assert await store.count("events") == 3 and await store.count("users") == 1
    store._cache.clear()
    assert (await store.prefs(keep)).language == "tr" and (await store.prefs(gone)).language is None
    await store.close()


async def test_an_offer_id_too_long_for_postgres_is_dropped_not_retried_forever(postgres_target):
    store = await open_store(postgres_target)
    store.record("question", "telegram", "de", "school", "o" * 65, True)  # the audit's 65-character offer id
    key = store.key("telegram", 3)
    await store.subscribe(key, "school", "telegram", "3")
    assert await store.forget(key, wait_s=30) == "done"
    assert await store.count("events") == 0 and await store.count("subscriptions") == 0
    await store.close()


async def test_kill_9_while_sqlite_is_locked_loses_nothing_durable_and_writes_it_once(tmp_path):
    path, journal = tmp_path / "bot.db", tmp_path / "journal"
    url = f"sqlite+aiosqlite:///{path}"
    worker = Path(__file__).with_name("workers") / "store_writer.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    import subprocess
    import sys

    # Run 1 writes 40 changes and is killed once they are written.
    process = subprocess.Popen([sys.executable, str(worker), url, str(journal), "40", "written"], env=env,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().startswith("durable")
    store = await Store.open(url, Pseudonyms(SECRET))
    await store.flush()
    assert await store.count("events") == 40
    await store.close()
    process.kill()
    process.wait(10)
    # Run 2 writes 60 more while another process holds the database locked, and is killed.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    process = subprocess.Popen([sys.executable, str(worker), url, str(journal), "60"], env=env,
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    # accepted, durable and not written: its 61 changes, and the journal's older ones it could not check
    assert line.split()[0] == "durable" and int(line.split()[1]) >= 61, line
    process.kill()
    process.wait(10)
    blocker.execute("ROLLBACK")
    blocker.close()
    # The next start writes the 60 from the journal, and not the 40 again.
    store = await Store.open(url, Pseudonyms(SECRET), journal=journal)
    await asyncio.wait_for(store.flush(), 30)
    assert await store.count("events") == 100
    assert (await store.prefs(Pseudonyms(b"worker-secret-worker-secret-0123").key("test", 1))).language == "uk"
    assert await store.close() == 0
    again = await Store.open(url, Pseudonyms(SECRET), journal=journal)
    await again.flush()
    assert await again.count("events") == 100 and again.pending == 0
    await again.close()


async def test_shutdown_during_an_outage_is_bounded_and_keeps_the_changes(tmp_path, caplog):
    path, journal = tmp_path / "bot.db", tmp_path / "journal"
    url = f"sqlite+aiosqlite:///{path}"
    store = await Store.open(url, Pseudonyms(SECRET), journal=journal, connect_args={"timeout": 0.1})
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for _ in range(50):
        store.record("question", "telegram", "de", None, None, False)
    with caplog.at_level(logging.WARNING):
        lost = await asyncio.wait_for(store.close(timeout=1.0), 30)
    assert lost == 0 and any("50 change(s) not written" in r.getMessage() for r in caplog.records)
    blocker.execute("ROLLBACK")
    blocker.close()
    store = await Store.open(url, Pseudonyms(SECRET), journal=journal)
    await store.flush()
    assert await store.count("events") == 50
    await store.close()
    # Without a journal the same shutdown says how many changes are lost.
    plain = await Store.open(url, Pseudonyms(SECRET), connect_args={"timeout": 0.1})
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    plain.record("question", "telegram", "de", None, None, False)
    assert await asyncio.wait_for(plain.close(timeout=0.5), 30) == 1
    blocker.execute("ROLLBACK")
    blocker.close()


async def test_a_deleted_sqlite_file_is_noticed_and_started_anew(tmp_path, caplog):
    path = tmp_path / "data" / "bot.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", Pseudonyms(SECRET))
    store.record("question", "telegram", "de", None, None, True)
    await store.flush()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            store.record("question", "telegram", "de", None, None, True)
        await asyncio.wait_for(store.flush(), 30)
    assert any("was deleted while the bot ran" in r.getMessage() for r in caplog.records)
    assert path.exists() and await store.count("events") == 3  # in a real file, not in the unlinked one
    await store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    check.close()


def _read_only(path: Path, on: bool) -> None:
    """Root writes to a file whatever its mode: for root, the immutable attribute stands in."""
    import subprocess

    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)
    else:
        path.chmod(0o444 if on else 0o600)


async def test_a_read_only_sqlite_file_made_writable_again_is_written_to(tmp_path, caplog):
    path = tmp_path / "bot.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}", Pseudonyms(SECRET))
    store.record("question", "telegram", "de", None, None, True)
    await store.flush()
    await store.engine.dispose()  # the next connection opens the file anew, as after a pool recycle
    _read_only(path, True)
    try:
        store.record("question", "telegram", "de", None, None, True)
        with caplog.at_level(logging.ERROR):
            assert not await store.flush_within(1.5)
        assert any("readonly" in r.getMessage() for r in caplog.records)
    finally:
        _read_only(path, False)
    await asyncio.wait_for(store.flush(), 30)  # without a restart
    assert await store.count("events") == 2
    await store.close()


async def test_the_migration_forgets_what_was_typed_after_start(target):
    """Databases of earlier versions kept any /start argument; the upgrade keeps only our links."""
    from datetime import date

    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.store.schema import events, referrals
    from bot.store.store import _upgrade

    url, connect_args = target
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    old = create_async_engine(url, connect_args=connect_args or {})
    day = date(2026, 5, 4)
    async with old.begin() as conn:
        await conn.run_sync(_upgrade, "0002")
        await conn.execute(referrals.insert(), [
            {"payload": "ar-daycare", "known": True, "count": 3, "first_used": day, "last_used": day},
            {"payload": "Amal Haddad 0151 2345678", "known": False, "count": 1, "first_used": day, "last_used": day},
            {"payload": "zz", "known": False, "count": 2, "first_used": date(2026, 5, 1), "last_used": day}])
        await conn.execute(events.insert(), [
            {"day": day, "kind": "start", "transport": "telegram", "payload": p}
            for p in ("ar-daycare", "Amal Haddad 0151 2345678", "zz")])
    await old.dispose()
    store = await open_store(target)
    referral_rows = {r.payload: (r.count, r.known, r.first_used) for r in await store.referral_rows()}
    assert referral_rows == {"ar-daycare": (3, True, day), "unknown": (3, False, date(2026, 5, 1))}
    assert sorted(r.payload for r in await store.event_rows(day)) == ["ar-daycare", "unknown", "unknown"]
    await store.close()


async def test_a_second_process_on_the_same_journal_does_not_take_it_over(tmp_path, caplog):
    url, journal = f"sqlite+aiosqlite:///{tmp_path}/bot.db", tmp_path / "journal"
    first = await Store.open(url, Pseudonyms(SECRET), journal=journal)
    with caplog.at_level(logging.ERROR):
        second = await Store.open(url, Pseudonyms(SECRET), journal=journal)
    assert any("in use by another bot process" in r.getMessage() for r in caplog.records)
    assert first.journal is not None and first.journal.ok and second.journal is not None and not second.journal.ok
    first.record("question", "telegram", "de", None, None, True)
    second.record("question", "telegram", "de", None, None, True)
    assert await first.durable(5) and await second.durable(5)  # the second one: once written
    await second.close()
    await first.close()
    assert await (third := await Store.open(url, Pseudonyms(SECRET), journal=journal)).durable(5)  # free again
    assert await third.count("events") == 2
    await third.close()


async def test_answered_update_ids_are_remembered_per_transport_and_pruned_after_a_week(target):
    store = await open_store(target)
    store.mark_answered("telegram", 41)
    store.mark_answered("matrix", "$event:localhost")
    assert await store.answered("telegram", [41, 42]) == {"41"}  # still queued: counted already
    await store.flush()
    assert await store.answered("telegram", ["41", "$event:localhost"]) == {"41"}
    assert await store.answered("matrix", ["$event:localhost", "41"]) == {"$event:localhost"}
    await store.purge(now=datetime.now(UTC) + timedelta(days=6))
    assert await store.count("answered_updates") == 2
    await store.purge(now=datetime.now(UTC) + timedelta(days=8))
    assert await store.count("answered_updates") == 0
    await store.close()
