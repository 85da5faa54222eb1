"""The engine with memory: preferences, privacy commands and figures through the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.engine import Engine
from bot.reply import Incoming
from bot.service import Service
from bot.stats import collect, render_csv, render_png, render_table
from bot.store import Pseudonyms, Store
from tests.helpers import TEST_SECRET


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"secret"))
    yield store
    await store.close()


@pytest.fixture
def service(catalogue, matcher, store) -> Service:
    return Service(Engine(catalogue, matcher, retention_days=30), store, "telegram")


def payloads(reply) -> list[str]:
    return [b.payload for m in reply.messages for row in m.buttons for b in row]


async def test_chosen_language_survives_a_restart(catalogue, matcher, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    first = await Store.open(url, Pseudonyms(b"secret"))
    await Service(Engine(catalogue, matcher), first, "telegram").handle(7, Incoming(user="", payload="lang:fa"))
    await first.close()
    second = await Store.open(url, Pseudonyms(b"secret"))
    reply = await Service(Engine(catalogue, matcher), second, "telegram").handle(
        7, Incoming(user="", text="Where can I learn German?", language_hint="en"))
    assert reply.language == "fa"
    await second.close()


async def test_privacy_says_what_is_kept_and_forget_deletes_it(service, store):
    reply = await service.handle(1, Incoming(user="", text="/privacy"), address="chat-1")
    assert "30" in reply.plain() and "/forget" in reply.plain()
    await service.handle(1, Incoming(user="", payload="lang:uk"))
    await service.handle(1, Incoming(user="", payload="sub:school:1"), address="chat-1")
    await store.flush()
    assert await store.count("users") == 1 and await store.count("subscriptions") == 1
    reply = await service.handle(1, Incoming(user="", text="/forget"))
    assert reply.language == "uk" and reply.plain()
    assert await store.count("users") == 0 and await store.count("subscriptions") == 0
    after = await service.handle(1, Incoming(user="", text="/start", language_hint="de"))
    assert after.language == "de"  # nothing left of the earlier choice


async def test_topic_subscription_button_toggles(service, store):
    reply = await service.handle(2, Incoming(user="", payload="t:daycare"), address="chat-2")
    assert "sub:daycare:1" in payloads(reply)
    await service.handle(2, Incoming(user="", payload="sub:daycare:1"), address="chat-2")
    reply = await service.handle(2, Incoming(user="", payload="t:daycare"), address="chat-2")
    assert "sub:daycare:0" in payloads(reply)
    await store.flush()
    items = await store.enqueue_news("n", "daycare"), await store.outbox_pending()
    assert items[0] == 1 and items[1][0].address == "chat-2"


async def test_district_preference_changes_the_ranking(service, catalogue):
    picker = await service.handle(3, Incoming(user="", text="/district"))
    index = catalogue.districts.index("Wesertor")
    assert f"d:{index}" in payloads(picker) and "d:-" in payloads(picker)
    await service.handle(3, Incoming(user="", payload=f"d:{index}"))
    reply = await service.handle(3, Incoming(user="", text="Deutschkurs für Mütter"))
    first = reply.matches[0].offer
    assert "Wesertor" in catalogue.offers[first].districts


async def test_questions_feedback_and_links_become_anonymous_figures(service, store, tmp_path):
    await service.handle(4, Incoming(user="", text="/start ar-daycare"))
    await service.handle(4, Incoming(user="", text="/start broken-link!"))
    answer = await service.handle(4, Incoming(user="", text="وين بلاقي Kita لابني؟"))
    feedback = [p for p in payloads(answer) if p.startswith("fb:") and p.endswith(":1")][0]
    await service.handle(4, Incoming(user="", payload=feedback))
    await service.handle(4, Incoming(user="", text="Wer gewinnt heute das Fußballspiel? Ruf an: 0561 1234567"))
    await service.handle(4, Incoming(user="", text="Schwimmkurs für Kinder am Wochenende"))  # a near miss: no answer
    await store.flush()
    figures = await collect(store, matcher=service.engine.matcher)
    table = render_table(figures)
    assert "closest:" in table
    assert "daycare" in table and "ar" in table
    assert "[phone]" in table and "1234567" not in table  # scrubbed unanswered question
    assert {p for p, _, _ in figures.referrals} == {"ar-daycare", "unknown"}
    assert dict((p, k) for p, k, _ in figures.referrals)["unknown"] is False
    last = table.splitlines()[-1]
    assert "questions=3 answered=1" in last and "helpful=1" in last and "link_uses=2" in last
    csv = render_csv(figures).splitlines()
    assert csv[0].startswith("week,topic,language,questions") and len(csv) >= 3
    chart = tmp_path / "stats.png"
    render_png(figures, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_without_a_store_the_engine_still_answers(catalogue, matcher):
    reply = await Service(Engine(catalogue, matcher), None, "terminal").handle("x", Incoming(user="", text="Kita"))
    assert reply.category == "daycare"


def test_stats_command(tmp_path):
    import os
    import subprocess
    import sys

    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    env = {**os.environ, "BILDUNGSLOTSE_SECRET": TEST_SECRET}
    root = Path(__file__).resolve().parents[1]
    chat = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "chat"], input="Kita\nSchach spielen\n",
                          capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert chat.returncode == 0, chat.stderr
    result = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "stats", "--png", str(tmp_path / "s.png")],
                            capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "questions=2 answered=1" in result.stdout and (tmp_path / "s.png").exists()


async def test_text_typed_after_start_is_not_kept(service, store):
    """Only our own links are kept; anything else typed after /start (a name, a number) counts as unknown."""
    await service.handle(5, Incoming(user="", text="/start Amal Haddad 0151 2345678 Wesertor"))
    await service.handle(6, Incoming(user="", text="/start ar-o-zz-nobody"))  # link-shaped, but not ours
    await service.handle(7, Incoming(user="", text="/start tr-daycare"))
    await store.flush()
    async with store.engine.connect() as conn:
        rows = [repr(tuple(r)) for table in ("events", "referrals")
                for r in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
    dump = "\n".join(rows)
    assert "Amal" not in dump and "2345678" not in dump and "nobody" not in dump
    figures = await collect(store)
    assert {(p, k, n) for p, k, n in figures.referrals} == {("tr-daycare", True, 1), ("unknown", False, 2)}
    assert "Amal" not in render_table(figures)


async def _crash(store: Store) -> None:
    """Stop a store as a crash would: the writer gone, nothing flushed, the journal as it is on disk."""
    store._closing = True
    if store._writer:
        store._writer.cancel()
    if store.journal:
        store.journal.close()  # as the process's end would: its lock goes, its file stays as it is
    await store.engine.dispose()


async def test_forget_says_done_only_when_it_is_done_and_survives_a_crash(catalogue, matcher, tmp_path):
    url, journal = f"sqlite+aiosqlite:///{tmp_path}/bot.db", tmp_path / "journal"
    store = await Store.open(url, Pseudonyms(b"secret"), journal=journal, connect_args={"timeout": 0.1})
    store.forget_wait_s = 0.5
    engine = Engine(catalogue, matcher)
    service = Service(engine, store, "telegram")
    await service.handle(1, Incoming(user="", payload="lang:uk"))
    await service.handle(1, Incoming(user="", payload="sub:school:1"), address="chat-1")
    await store.flush()
    blocker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the database does not take writes now
    reply = await service.handle(1, Incoming(user="", text="/forget"))
    assert reply.plain() == engine.forget_reply("uk", "queued").plain()  # "I will delete", not "Done"
    assert reply.plain() != engine.forget_reply("uk", "done").plain()
    await _crash(store)
    blocker.execute("ROLLBACK")
    blocker.close()
    again = await Store.open(url, Pseudonyms(b"secret"), journal=journal)
    await again.flush()
    assert await again.count("users") == 0 and await again.count("subscriptions") == 0  # done after all
    reply = await Service(engine, again, "telegram").handle(1, Incoming(user="", text="/forget"))
    assert reply.plain() == engine.forget_reply(reply.language, "done").plain()
    await again.close()


async def test_forget_without_a_journal_and_a_locked_database_says_it_could_not(catalogue, matcher, tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"secret"),
                             connect_args={"timeout": 0.1})
    store.forget_wait_s = 0.5
    engine = Engine(catalogue, matcher)
    await Service(engine, store, "telegram").handle(2, Incoming(user="", payload="lang:pl"))
    await store.flush()
    blocker = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    reply = await Service(engine, store, "telegram").handle(2, Incoming(user="", text="/forget"))
    assert reply.plain() == engine.forget_reply("pl", "pending").plain() and "/forget" in reply.plain()
    blocker.execute("ROLLBACK")
    blocker.close()
    await store.flush()
    assert await store.count("users") == 0  # still done once the database answers
    await store.close()
