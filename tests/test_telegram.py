"""Telegram: the real python-telegram-bot Application against a Bot API server on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.catalogue import load_catalogue
from bot.catalogue.model import TOPICS
from bot.config import Config, TelegramSettings
from bot.engine import Engine
from bot.languages import LANGUAGES
from bot.loopback.telegram_api import FakeBotApi
from bot.runner import Runtime
from bot.service import Service
from bot.store import Pseudonyms, Store
from bot.transports.telegram import CONCURRENT, TelegramTransport, split_text
from tests.helpers import TEST_SECRET
from tests.https_proxy import HttpsProxy

ROOT = Path(__file__).resolve().parents[1]
ADMIN = 4242


@pytest.fixture
async def api():
    server = await FakeBotApi().start()
    yield server
    await server.stop()


async def start_bot(api: FakeBotApi, tmp_path: Path, catalogue_dir: Path | None = None, read_timeout: float = 10.0):
    catalogue = load_catalogue(catalogue_dir or ROOT / "offers" / "kassel")
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"t"))
    engine = Engine(catalogue, build_matcher(catalogue))
    runtime = Runtime(Config(data_dir=tmp_path / "data"), catalogue_dir or ROOT / "offers" / "kassel", engine, store)
    transport = TelegramTransport(TelegramSettings(token=api.token, base_url=api.base_url, admins=(ADMIN,)),
                                  Service(engine, store, "telegram"), admin=runtime.admin, read_timeout=read_timeout)
    await transport.start()
    task = asyncio.create_task(transport.poll(timeout=1))
    return transport, task, store


async def stop_bot(bot) -> None:
    transport, task, store = bot
    transport.stop()
    await asyncio.wait_for(task, 10)
    await transport.shutdown()
    await store.close()


@pytest.fixture
async def bot(api, tmp_path):
    running = await start_bot(api, tmp_path)
    yield running
    await stop_bot(running)


def buttons(params: dict) -> list[dict]:
    markup = params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def callback_data(api: FakeBotApi, chat_id: int) -> list[str]:
    return [b["callback_data"] for p in api.sent(chat_id=chat_id) for b in buttons(p) if "callback_data" in b]


async def test_start_greets_in_the_app_language_with_topics_and_language_picker(api, bot):
    api.text("/start", uid=1, lang="ar")
    await api.wait_for(lambda: api.sent(chat_id=1))
    first = api.sent(chat_id=1)[0]
    assert first["parse_mode"] == "HTML" and "\u200f" in first["text"]  # Arabic, right-to-left
    data = callback_data(api, 1)
    assert sum(d.startswith("t:") for d in data) == len(TOPICS) and "menu:language" in data


async def test_deep_links_open_language_and_topic_or_fall_back(api, bot):
    api.text("/start tr-daycare", uid=2, lang="en")
    api.text("/start no-such-thing", uid=3, lang="de")
    await api.wait_for(lambda: api.sent(chat_id=2) and api.sent(chat_id=3))
    assert "o:kita-anmeldung:card" in callback_data(api, 2)
    assert "Kreş" in api.sent(chat_id=2)[0]["text"] or "kreş" in api.sent(chat_id=2)[0]["text"].lower()
    assert "Hallo" in api.sent(chat_id=3)[0]["text"]
    _, _, store = bot
    await store.flush()
    known = {r.payload: r.known for r in await store.referral_rows()}
    assert known == {"tr-daycare": True, "unknown": False}


async def test_language_picker_and_choice(api, bot):
    api.press("menu:language", uid=4)
    await api.wait_for(lambda: api.sent(chat_id=4))
    labels = [b["text"] for b in buttons(api.sent(chat_id=4)[0])]
    assert len(labels) == 10 and "Українська" in labels and "فارسی" in labels
    api.press("lang:uk", uid=4)
    api.text("Wo finde ich einen Deutschkurs?", uid=4, lang="de")
    await api.wait_for(lambda: len(api.sent(chat_id=4)) >= 3)
    answer = api.sent(chat_id=4)[2]["text"]
    assert "Integrationskurs" in answer and "курс" in answer.lower()  # answered in Ukrainian


@pytest.mark.parametrize(("uid", "text", "word"), [
    (11, "وين بلاقي Kita لابني؟", "Kibeka"),
    (12, "де курси німецької", "Integrationskurs"),
    (13, "kreş nasıl bulurum", "Kibeka"),
])
async def test_free_text_in_three_scripts(api, bot, uid, text, word):
    api.text(text, uid=uid, lang=None)
    await api.wait_for(lambda: len(api.sent(chat_id=uid)) >= 1)
    assert word in "".join(p["text"] for p in api.sent(chat_id=uid))


async def test_every_offer_button_answers_and_share_is_a_deep_link(api, bot):
    api.press("o:integrationskurs-schlachthof:card", uid=20, lang="ar")
    await api.wait_for(lambda: api.sent(chat_id=20))
    card = api.sent(chat_id=20)[0]
    share = [b for b in buttons(card) if "url" in b][0]
    assert "t.me%2Flotse_test_bot%3Fstart%3Dar-o-integrationskurs-schlachthof" in share["url"]
    actions = [b["callback_data"] for b in buttons(card) if "callback_data" in b]
    assert {a.split(":")[2] for a in actions} >= {"contact", "map", "bring", "desk", "details", "more"}
    for n, action in enumerate(actions, start=1):
        api.press(action, uid=20, lang="ar")
        await api.wait_for(lambda n=n: len(api.sent(chat_id=20)) > n)
    assert all(len(d.encode()) <= 64 for d in callback_data(api, 20))
    calls = [c.params for c in api.calls if c.method == "answerCallbackQuery"]
    assert len(calls) == len(actions) + 1


async def test_map_button_sends_a_venue_where_coordinates_are_sourced(api, tmp_path, catalogue_copy):
    offices = catalogue_copy / "offices.yaml"
    text = offices.read_text(encoding="utf-8")
    offices.write_text(text.replace("    address: Die Freiheit 2, 34117 Kassel\n",
                                    "    address: Die Freiheit 2, 34117 Kassel\n    coordinates: [51.3127, 9.4797]\n", 1),
                       encoding="utf-8")
    running = await start_bot(api, tmp_path, catalogue_copy)
    try:
        api.press("o:mbe-caritas:map", uid=21)
        api.press("o:integrationskurs:map", uid=22)
        await api.wait_for(lambda: api.sent("sendVenue") and api.sent(chat_id=22))
        venue = api.sent("sendVenue")[0]
        assert float(venue["latitude"]) == 51.3127 and "Die Freiheit 2" in venue["address"]
        assert "openstreetmap.org/search" in api.sent(chat_id=22)[0]["text"] and not api.sent("sendVenue", chat_id=22)
    finally:
        await stop_bot(running)


async def test_groups_answer_only_commands_and_mentions(api, bot):
    group = api.chat(-500, "group")
    api.text("wo gibt es Deutschkurse?", uid=30, chat=group)
    mention = "@lotse_test_bot wo gibt es Deutschkurse?"
    api.text(mention, uid=31, chat=group, entities=[{"type": "mention", "offset": 0, "length": 15}])
    api.text("/help@lotse_test_bot", uid=32, chat=group)
    await api.wait_for(lambda: len(api.sent(chat_id=-500)) >= 2)
    await asyncio.sleep(0.3)
    texts = [p["text"] for p in api.sent(chat_id=-500)]
    assert any("Integrationskurs" in t for t in texts)
    api.text("Kita?", uid=33, lang="de")
    await api.wait_for(lambda: api.sent(chat_id=33))
    assert sum("Integrationskurs" in t for t in texts) == 1  # one answer: the unmentioned question got none


async def test_command_menu_is_localised_for_every_language(api, bot):
    calls = api.sent("setMyCommands")
    by_lang = {c.get("language_code"): c["commands"] for c in calls}
    assert set(by_lang) == {None, *LANGUAGES}
    assert [c["command"] for c in by_lang["de"]] == ["start", "help", "language", "topics", "district", "privacy", "forget",
                                                    "stop"]  # stop: ends a conversation with a counsellor
    assert by_lang["de"][0]["description"] != by_lang["en"][0]["description"]
    assert by_lang["ar"][0]["description"] != by_lang["en"][0]["description"]


async def test_429_is_waited_out_and_the_message_arrives(api, bot):
    api.faults.send_429, api.faults.retry_after = 1, 1
    api.text("/help", uid=40)
    await api.wait_for(lambda: api.sent(chat_id=40), timeout=15)
    failed = [c for c in api.calls if c.method == "sendMessage" and str(c.params.get("chat_id")) == "40"]
    assert len(failed) == 2 and failed[1].at - failed[0].at >= 0.9


async def test_502_and_dropped_connection_during_polling_recover(api, bot):
    api.faults.updates_502, api.faults.updates_drop = 2, 2
    api.text("/help", uid=41)
    await api.wait_for(lambda: api.sent(chat_id=41), timeout=30)


async def test_a_reply_that_fails_on_the_way_is_retried_until_delivered(api, tmp_path):
    """502s, a dropped connection and a send that times out: the reply arrives, once, and only then
    is the update confirmed (the audit: logged, and the update confirmed anyway)."""
    running = await start_bot(api, tmp_path, read_timeout=1.0)
    try:
        api.faults.send_502, api.faults.send_drop, api.faults.send_hang, api.faults.hang_s = 1, 1, 1, 2.0
        update = api.text("/help", uid=43)
        await api.wait_for(lambda: api.sent(chat_id=43), timeout=30)
        await api.wait_for(lambda: not api.updates, timeout=10)  # confirmed once delivered
        attempts = [c for c in api.calls if c.method == "sendMessage" and str(c.params.get("chat_id")) == "43"]
        assert [c.ok for c in attempts] == [False, False, False, True]
        # Longer than the retries of one pass (5): the update stays unconfirmed, and is answered once.
        api.faults.send_502 = 6
        update = api.text("/help", uid=44)
        await api.wait_for(lambda: len([c for c in api.calls if str(c.params.get("chat_id")) == "44"]) >= 5, timeout=30)
        assert [u["update_id"] for u in api.updates] == [update]  # not confirmed while the reply fails
        await api.wait_for(lambda: api.sent(chat_id=44), timeout=60)
        await api.wait_for(lambda: not api.updates, timeout=10)
        await asyncio.sleep(0.5)
        assert len(api.sent(chat_id=44)) == 1
    finally:
        await stop_bot(running)


async def test_a_reply_that_fails_for_good_is_logged_without_its_text_and_confirmed(api, bot, caplog):
    api.faults.send_403 = 1
    with caplog.at_level(logging.INFO):  # what an operator's log shows (BILDUNGSLOTSE_DEBUG: ours only)
        api.text("Wo finde ich einen Deutschkurs für Mütter?", uid=45, lang="de")
        await api.wait_for(lambda: any(c.method == "sendMessage" for c in api.calls), timeout=10)
        await api.wait_for(lambda: not api.updates, timeout=10)  # confirmed: not retried forever
        api.text("/help", uid=46)
        await api.wait_for(lambda: api.sent(chat_id=46), timeout=10)
    assert not api.sent(chat_id=45)
    assert any("cannot be delivered" in r.getMessage() for r in caplog.records)
    assert not any("Deutschkurs" in r.getMessage() or "Mütter" in r.getMessage() for r in caplog.records
                   if r.levelno >= logging.INFO or r.name.startswith("bot"))


async def test_graceful_restart_in_a_backlog_answers_each_update_once(api, tmp_path):
    first = await start_bot(api, tmp_path)
    for uid in range(100, 120):
        api.text("/help", uid=uid)
    await api.wait_for(lambda: len(api.sent()) >= 5)
    await stop_bot(first)
    for uid in range(120, 140):
        api.text("/help", uid=uid)
    second = await start_bot(api, tmp_path)
    try:
        await api.wait_for(lambda: len({p["chat_id"] for p in api.sent()}) >= 40, timeout=20)
        await asyncio.sleep(0.5)
        counts = Counter(str(p["chat_id"]) for p in api.sent())
        assert all(counts[str(uid)] == 1 for uid in range(100, 140)), counts
    finally:
        await stop_bot(second)


async def test_run_on_the_bare_defaults_with_only_the_token(api, tmp_path):
    """The README's and the Dockerfile's path: TELEGRAM_BOT_TOKEN=… bildungslotse run, no config
    file, the default https://api.telegram.org, reached here through a proxy to the loopback server."""
    proxy = await HttpsProxy(tmp_path / "tls", api.port).start()
    env = {k: v for k, v in os.environ.items()
           if k not in ("BILDUNGSLOTSE_CONFIG", "BILDUNGSLOTSE_SECRET", "DATABASE_URL", "MATRIX_ACCESS_TOKEN",
                        "MATRIX_PASSWORD", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")}
    env.update(TELEGRAM_BOT_TOKEN=api.token, HTTPS_PROXY=proxy.url, SSL_CERT_FILE=str(proxy.ca_file))
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api.text("/start", uid=90, lang="de")
        await api.wait_for(lambda: api.sent(chat_id=90) or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.communicate()[0]
        assert "Bildungslotse" in api.sent(chat_id=90)[0]["text"]
        assert set(proxy.tunnels) == {"api.telegram.org:443"}
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
        await proxy.stop()
    assert process.returncode == 0, output
    assert "Traceback" not in output and (work / "data" / "bildungslotse.db").exists()


async def test_kill_9_in_a_backlog_loses_no_update_and_repeats_only_those_in_flight(api, tmp_path):
    """The audit: 30 messages at once, killed after 11 replies: 10 were answered twice after the restart."""
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ntelegram:\n  base_url: {api.base_url}\n", encoding="utf-8")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "BILDUNGSLOTSE_SECRET": TEST_SECRET}

    def launch() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    for uid in range(200, 260):
        api.text("/help", uid=uid)
    proc = launch()
    await api.wait_for(lambda: len(api.sent()) >= 11, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc = launch()
    try:
        await api.wait_for(lambda: len({p["chat_id"] for p in api.sent()}) >= 60, timeout=60)
        await asyncio.sleep(0.5)
        counts = Counter(str(p["chat_id"]) for p in api.sent())
        assert all(1 <= counts[str(uid)] <= 2 for uid in range(200, 260)), counts
        assert sum(n == 2 for n in counts.values()) <= CONCURRENT, counts  # only those in flight
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


async def test_an_outage_of_the_database_loses_no_confirmed_change_on_kill_9_or_sigterm(api, tmp_path):
    """The audit: kill -9 during a database outage lost all 120 changes of updates already confirmed;
    SIGTERM lost 50 and exited 0. Now what was confirmed is durable (the journal) and written later."""
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {data}\ntelegram:\n  base_url: {api.base_url}\n", encoding="utf-8")
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "BILDUNGSLOTSE_SECRET": TEST_SECRET}
    log = tmp_path / "bot.log"

    def launch() -> subprocess.Popen:
        with log.open("a") as out:
            return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=ROOT, env=env,
                                    stdout=out, stderr=out)

    def questions() -> int:
        db = sqlite3.connect(data / "bildungslotse.db", timeout=30)
        try:
            return db.execute("SELECT count(*) FROM events WHERE kind = 'question'").fetchone()[0]
        finally:
            db.close()

    proc = launch()
    try:
        api.text("Kita", uid=300, lang="de")
        await api.wait_for(lambda: api.sent(chat_id=300), timeout=60)
        await api.wait_for(lambda: questions() == 1, timeout=30)
        blocker = sqlite3.connect(data / "bildungslotse.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # the database takes no writes from now on
        for uid in range(301, 331):
            api.text("Kita", uid=uid, lang="de")
        await api.wait_for(lambda: all(api.sent(chat_id=uid) for uid in range(301, 331)), timeout=60)
        await api.wait_for(lambda: not api.updates, timeout=30)  # all 30 confirmed to Telegram
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = launch()  # still no database: these 20 are answered, then the bot is stopped
        for uid in range(331, 351):
            api.text("Kita", uid=uid, lang="de")
        await api.wait_for(lambda: all(api.sent(chat_id=uid) for uid in range(331, 351)), timeout=60)
        await api.wait_for(lambda: not api.updates, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        assert "kept in" in log.read_text()
        blocker.execute("ROLLBACK")
        blocker.close()
        proc = launch()  # the database is back: the journal is written, each change once
        await api.wait_for(lambda: questions() >= 51, timeout=60)
        await asyncio.sleep(1.0)
        assert questions() == 51
        counts = Counter(str(p["chat_id"]) for p in api.sent())
        assert all(counts[str(uid)] == 1 for uid in range(300, 351)), counts  # none answered twice
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


async def test_html_in_user_and_catalogue_text_is_escaped(api, tmp_path, catalogue_copy):
    school = catalogue_copy / "school.yaml"
    school.write_text(school.read_text(encoding="utf-8").replace(
        "title: Intensivklasse und Intensivkurs Deutsch", "title: Intensivklasse <b>&</b> Kurs", 1), encoding="utf-8")
    running = await start_bot(api, tmp_path, catalogue_copy)
    try:
        api.text("<script>alert(1)</script> Intensivklasse <i>", uid=50, lang="de")
        api.press("o:intensivklasse:card", uid=51, lang="de")
        await api.wait_for(lambda: api.sent(chat_id=50) and api.sent(chat_id=51))
        sent = "".join(p["text"] for p in api.sent())
        assert "<script>" not in sent and "Intensivklasse &lt;b&gt;&amp;&lt;/b&gt; Kurs" in sent
    finally:
        await stop_bot(running)


async def test_admin_commands_only_for_admins(api, bot):
    api.text("/reload", uid=ADMIN)
    api.text("/reload", uid=60)
    await api.wait_for(lambda: api.sent(chat_id=ADMIN) and api.sent(chat_id=60))
    assert api.sent(chat_id=ADMIN)[0]["text"].startswith("Reloaded: version")
    assert "Reloaded" not in api.sent(chat_id=60)[0]["text"]


async def test_admin_commands_are_answered_only_in_private_chats(api, bot):
    group = api.chat(-600, "group")
    api.text("/stats", uid=ADMIN, chat=group)
    api.text("/stats@lotse_test_bot", uid=ADMIN, chat=group)
    api.text("/stats", uid=ADMIN)
    await api.wait_for(lambda: len(api.sent(chat_id=-600)) >= 2 and api.sent(chat_id=ADMIN))
    assert "questions=" in api.sent(chat_id=ADMIN)[0]["text"]  # the figures, in private
    assert all("questions=" not in p["text"] and "unanswered" not in p["text"] for p in api.sent(chat_id=-600))


def test_long_text_is_split_on_lines_within_the_limit():
    text = "\n".join(f"<b>line {i}</b> " + "x" * 90 for i in range(200))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
    assert all(p.count("<b>") == p.count("</b>") for p in parts)


async def test_webhook_mode_checks_the_secret_token(api, tmp_path):
    import json
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    catalogue = load_catalogue(ROOT / "offers" / "kassel")
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"t"))
    settings = TelegramSettings(token=api.token, base_url=api.base_url, webhook_url="https://bot.example.org/tg",
                                webhook_listen="127.0.0.1", webhook_port=port, webhook_secret="s3cret_token")
    transport = TelegramTransport(settings, Service(Engine(catalogue, build_matcher(catalogue)), store, "telegram"))
    await transport.start()
    task = asyncio.create_task(transport.serve())
    try:
        await api.wait_for(lambda: api.webhook is not None)
        assert api.webhook["url"] == "https://bot.example.org/tg" and api.webhook["secret_token"] == "s3cret_token"
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/help",
                                              "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                                              "from": api.user(70), "chat": api.chat(70)}}

        def post(secret: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/tg", data=json.dumps(update).encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "X-Telegram-Bot-Api-Secret-Token": secret})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert await asyncio.to_thread(post, "wrong") == 403
        await asyncio.sleep(0.3)
        assert not api.sent(chat_id=70)
        assert await asyncio.to_thread(post, "s3cret_token") == 200
        await api.wait_for(lambda: api.sent(chat_id=70))
    finally:
        transport.stop()
        await asyncio.wait_for(task, 10)
        await transport.shutdown()
        await store.close()
