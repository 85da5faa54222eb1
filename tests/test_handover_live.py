"""The counsellor handover end to end: the bot on a real Synapse on loopback (a counsellor in the
counsellors' room, a newcomer in a direct chat) and on the Telegram Bot API loopback server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import MatrixSettings, TelegramSettings
from bot.engine import Engine
from bot.handover.cases import CaseStore
from bot.handover.dialogue import OFFER, STOP, YES, Desk
from bot.handover.hours import parse_hours
from bot.handover.relay import Relayer
from bot.i18n import translator
from bot.languages import LANGUAGES
from bot.loopback.synapse import Synapse, available
from bot.loopback.telegram_api import FakeBotApi
from bot.service import Service
from bot.store import Pseudonyms, Store
from bot.transports.matrix import MatrixTransport
from bot.transports.telegram import TelegramTransport
from tests.matrix_helpers import Person, body, unique

pytestmark = pytest.mark.skipif(not available(), reason="Synapse (matrix-synapse, in the test extras) is not installed")
HOURS = parse_hours(["Mon-Fri 09:00-16:00"], "Europe/Berlin")
SATURDAY = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)  # off hours: answers expected from Monday 09:00
UID = 40917263  # a Telegram user id longer than a case number, so no drawn number or date contains it
NOTHING_FITS = "Wann spielt Borussia Dortmund am Samstag?"


def said(key: str, text: str) -> bool:
    """`text` contains the interface string `key` in one of the ten languages."""
    return any(translator(lang)(key) in text for lang in LANGUAGES)


class Lotse:
    """The bot as `bildungslotse run` wires it: Matrix (with the counsellors' room), Telegram,
    the store and the relay worker, in this process."""

    def __init__(self, synapse: Synapse, api: FakeBotApi, directory: Path, account: dict, room: str,
                 catalogue, matcher) -> None:
        self.synapse, self.api, self.directory, self.account, self.room = synapse, api, directory, account, room
        self.catalogue, self.matcher = catalogue, matcher

    async def start(self) -> Lotse:
        self.store = await Store.open(f"sqlite+aiosqlite:///{self.directory}/bot.db", Pseudonyms(b"handover-live"))
        self.cases = CaseStore(self.store)
        engine = Engine(self.catalogue, self.matcher, desk=Desk(HOURS, clock=lambda: SATURDAY))
        settings = MatrixSettings(homeserver=self.synapse.url, user_id=self.account["user_id"],
                                  token=self.account["access_token"])
        self.matrix = MatrixTransport(settings, Service(engine, self.store, "matrix", self.cases), self.store,
                                      self.directory, counsellors_room=self.room, cases=self.cases)
        await self.matrix.start()
        self.telegram = TelegramTransport(TelegramSettings(token=self.api.token, base_url=self.api.base_url),
                                          Service(engine, self.store, "telegram", self.cases), rate_limit=False)
        await self.telegram.start()
        assert engine.desk is not None
        relayer = Relayer(self.cases, lambda: self.catalogue, self.matrix,
                          {"telegram": self.telegram.send_news, "matrix": self.matrix.send_news}, engine.desk)
        self.tasks = [asyncio.create_task(self.matrix.run()), asyncio.create_task(self.telegram.poll(timeout=1))]
        self.relay = asyncio.create_task(relayer.run(every_s=0.5, max_backoff_s=2.0))
        return self

    async def stop(self) -> None:
        self.matrix.stop()
        self.telegram.stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 40)
        self.relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.relay
        await self.telegram.shutdown()
        await self.matrix.shutdown()
        await self.store.close()


@pytest.fixture
async def api():
    server = await FakeBotApi().start()
    yield server
    await server.stop()


@pytest.fixture
async def desk(synapse, tmp_path):
    """A counsellor, the bot's account, and the counsellors' room the counsellor invited it to."""
    counsellor = Person(synapse, unique("beraterin"), tmp_path / "counsellor")
    await counsellor.sync(0)
    account = synapse.register(unique("lotse"))
    room = await counsellor.room_with(account["user_id"], direct=False)
    yield counsellor, account, room
    await counsellor.close()


@pytest.fixture
async def lotse(synapse, api, desk, tmp_path, catalogue, matcher):
    _, account, room = desk
    running = await Lotse(synapse, api, tmp_path / "bot", account, room, catalogue, matcher).start()
    yield running
    with contextlib.suppress(Exception):
        await running.stop()


async def answer_in_thread(person: Person, room: str, root: str, text: str) -> None:
    await person.client.room_send(room, "m.room.message", {
        "msgtype": "m.text", "body": text,
        "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": True,
                         "m.in_reply_to": {"event_id": root}}}, ignore_unverified_devices=True)


def thread_of(source: dict) -> str | None:
    relation = (source.get("content") or {}).get("m.relates_to") or {}
    return relation.get("event_id") if relation.get("rel_type") == "m.thread" else None


async def threads(person: Person, room: str, bot_id: str, count: int) -> dict[str, list[str]]:
    """The bot's threads in the counsellors' room: root event id -> the root's text, then the posts in it."""
    found: dict[str, list[str]] = {}
    for source in await person.wait_replies(room, bot_id, count):
        root = thread_of(source)
        if root is None:
            found[source["event_id"]] = [body(source)]
        elif root in found:
            found[root].append(body(source))
    return found


def telegram_texts(api: FakeBotApi, chat: int) -> list[str]:
    return [p["text"] for p in api.sent(chat_id=chat)]


async def telegram_hands_over(api: FakeBotApi, uid: int) -> str:
    """A newcomer on Telegram: nothing fits, "talk to a person", yes. Returns the confirmation."""
    api.text(NOTHING_FITS, uid=uid, lang="de")
    await api.wait_for(lambda: any(OFFER in str(p.get("reply_markup")) for p in api.sent(chat_id=uid)), 30)
    api.press(OFFER, uid=uid, lang="de")
    await api.wait_for(lambda: any(YES in str(p.get("reply_markup")) for p in api.sent(chat_id=uid)), 30)
    api.press(YES, uid=uid, lang="de")
    await api.wait_for(lambda: any(STOP in str(p.get("reply_markup")) for p in api.sent(chat_id=uid)), 30)
    return [t for t, p in zip(telegram_texts(api, uid), api.sent(chat_id=uid), strict=True)
            if STOP in str(p.get("reply_markup"))][0]


async def test_two_newcomers_on_telegram_and_matrix_each_answered_in_their_thread(lotse, desk, api, synapse, tmp_path):
    counsellor, account, room = desk
    bot_id = account["user_id"]
    confirmation = await telegram_hands_over(api, UID)
    # off hours (a Saturday): when to expect an answer, and that the case is kept meanwhile
    off_hours = translator("de")("It is outside these hours now: expect an answer from {when} on. Your case is kept until then.")
    assert off_hours.format(when="Montag, 09:00") in confirmation
    alice = Person(synapse, unique("amal"), tmp_path / "amal")
    await alice.sync(0)
    direct = await alice.room_with(bot_id)
    await alice.wait_replies(direct, bot_id, 1, timeout=30)  # the greeting
    await alice.say(direct, "Ich möchte bitte mit einem Menschen sprechen")
    offer = body((await alice.wait_replies(direct, bot_id, 2, timeout=30))[-1])
    assert said("If you agree, I share only your question and your language with the counsellors – not your name and not your number.", offer)
    await alice.say(direct, "1")  # the numbered "yes"
    opened = body((await alice.wait_replies(direct, bot_id, 3, timeout=30))[-1])
    assert said("Write your question now: it goes to the counsellors.", opened)
    await alice.say(direct, "Ich habe einen Brief vom Jobcenter und verstehe ihn nicht")

    found = await threads(counsellor, room, bot_id, 3)
    assert len(found) == 2, found
    telegram_root = next(r for r, texts in found.items() if "Dortmund" in texts[0])
    matrix_root = next(r for r in found if r != telegram_root)
    everything = "\n".join(t for texts in found.values() for t in texts)
    assert str(UID) not in everything and alice.user_id not in everything
    assert "amal" not in everything.lower()  # counsellors never see platform ids or names
    assert any("Jobcenter" in t for t in found[matrix_root][1:])  # the first message followed in the thread
    number = found[telegram_root][0].split()[1]
    assert number in confirmation and "Sprache: Deutsch (de)" in found[telegram_root][0]

    await answer_in_thread(counsellor, room, telegram_root, "Guten Tag, hier ist die Beratung für Telegram.")
    await answer_in_thread(counsellor, room, matrix_root, "Guten Tag, hier ist die Beratung für Matrix.")
    await api.wait_for(lambda: any("für Telegram" in t for t in telegram_texts(api, UID)), 30)
    reply = body((await alice.wait_replies(direct, bot_id, 4, timeout=30))[-1])
    assert "für Matrix" in reply and "für Telegram" not in reply and said("A counsellor (a person) writes:", reply)
    telegram_reply = next(t for t in telegram_texts(api, UID) if "für Telegram" in t)
    assert said("A counsellor (a person) writes:", telegram_reply)
    assert not any("für Matrix" in t for t in telegram_texts(api, UID))

    api.text("Danke! Und wo ist das Büro?", uid=UID, lang="de")  # the newcomer's next message: to the thread
    await counsellor.client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!cases"})
    found = await threads(counsellor, room, bot_id, 5)
    assert any("wo ist das Büro" in t for t in found[telegram_root][1:])
    listing = [body(s) for s in await counsellor.replies(room, bot_id) if "Offene Fälle" in body(s)]
    assert listing and "Offene Fälle: 2" in listing[-1] and number in listing[-1] and "seit" in listing[-1]

    # the newcomer on Telegram ends it; a counsellor's later reply is refused and not sent
    api.text("/stop", uid=UID, lang="de")
    found = await _wait_thread(counsellor, room, bot_id, telegram_root, "Die Person hat das Gespräch beendet")
    sent_before = len(telegram_texts(api, UID))
    await answer_in_thread(counsellor, room, telegram_root, "Noch eine Nachricht nach dem Ende")
    await _wait_thread(counsellor, room, bot_id, telegram_root, "nicht weitergeleitet")
    await asyncio.sleep(1.0)
    assert not any("nach dem Ende" in t for t in telegram_texts(api, UID)) and len(telegram_texts(api, UID)) == sent_before

    # the counsellor closes the Matrix case: the newcomer is told, the bot answers questions again
    await answer_in_thread(counsellor, room, matrix_root, "!close")
    closed = body((await alice.wait_replies(direct, bot_id, 5, timeout=30))[-1])
    assert said("The counsellor has ended the conversation. You can ask me again at any time.", closed)
    await alice.say(direct, "Wo finde ich einen Deutschkurs?")
    answer = body((await alice.wait_replies(direct, bot_id, 6, timeout=30))[-1])
    assert "Integrationskurs" in answer or "Deutsch" in answer
    assert await lotse.cases.open_cases() == []
    await alice.close()


async def _wait_thread(person: Person, room: str, bot_id: str, root: str, text: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await threads(person, room, bot_id, 1)
        if any(text in t for t in found.get(root, [])[1:]):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{text!r} not in the thread: {found.get(root)}")
        await person.sync(0.3)


async def test_declined_consent_shares_nothing_and_a_restart_loses_no_message(lotse, desk, api):
    counsellor, account, room = desk
    bot_id = account["user_id"]
    api.text(NOTHING_FITS, uid=51, lang="de")
    await api.wait_for(lambda: any(OFFER in str(p.get("reply_markup")) for p in api.sent(chat_id=51)), 30)
    api.press(OFFER, uid=51, lang="de")
    api.press("hv:no", uid=51, lang="de")
    await api.wait_for(lambda: len(api.sent(chat_id=51)) >= 3, 30)
    assert said("All right: I shared nothing. Ask me again or choose a topic:", telegram_texts(api, 51)[-1])
    assert await counsellor.quiet_for(room, bot_id, 1.5) == 0 and await lotse.cases.all_cases() == []

    await telegram_hands_over(api, 52)
    found = await threads(counsellor, room, bot_id, 1)
    (root,) = found
    await lotse.stop()  # the bot goes down in the middle of the case
    await answer_in_thread(counsellor, room, root, "Antwort, während der Bot neu startet")
    api.text("Nachricht, während der Bot neu startet", uid=52, lang="de")
    await asyncio.sleep(0.5)
    again = await Lotse(lotse.synapse, api, lotse.directory, lotse.account, lotse.room, lotse.catalogue,
                        lotse.matcher).start()
    try:
        await api.wait_for(lambda: any("während der Bot" in t for t in telegram_texts(api, 52)), 40)
        await _wait_thread(counsellor, room, bot_id, root, "Nachricht, während der Bot neu startet", 40)
        await asyncio.sleep(1.5)  # nothing comes twice
        assert sum("Antwort, während" in t for t in telegram_texts(api, 52)) == 1
        found = await threads(counsellor, room, bot_id, 1)
        assert sum("Nachricht, während" in t for t in found[root]) == 1
    finally:
        await again.stop()


async def test_a_synapse_restart_loses_no_message_either_way(lotse, desk, api, synapse):
    counsellor, account, room = desk
    bot_id = account["user_id"]
    await telegram_hands_over(api, 61)
    (root,) = await threads(counsellor, room, bot_id, 1)
    synapse.stop()  # the homeserver goes down in the middle of the case
    try:
        api.text("Geschrieben, während Synapse neu startet", uid=61, lang="de")
        await asyncio.sleep(1.0)
    finally:
        synapse.start()
    await counsellor.sync(0)
    await _wait_thread(counsellor, room, bot_id, root, "während Synapse neu startet", 60)
    await answer_in_thread(counsellor, room, root, "Antwort nach dem Neustart von Synapse")
    await api.wait_for(lambda: any("Neustart von Synapse" in t for t in telegram_texts(api, 61)), 60)


async def test_bildungslotse_run_wires_the_handover(synapse, desk, tmp_path):
    """`bildungslotse run` as deployed: the handover section turns it on; a kill -9 mid-case loses nothing."""
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import TEST_SECRET

    counsellor, account, room = desk
    bot_id = account["user_id"]
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmatrix:\n  homeserver: {synapse.url}\n  user_id: \"{bot_id}\"\n"
                      f"handover:\n  room: \"{room}\"\n  hours: ['Mon-Sun 00:00-23:59']\n", encoding="utf-8")
    env = {**os.environ, "MATRIX_ACCESS_TOKEN": account["access_token"], "BILDUNGSLOTSE_SECRET": TEST_SECRET}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    root = Path(__file__).resolve().parents[1]

    def launch() -> subprocess.Popen:
        log = (tmp_path / "bot.log").open("a")
        return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=root, env=env,
                                stdout=log, stderr=log)

    alice = Person(synapse, unique("newcomer"), tmp_path / "newcomer")
    await alice.sync(0)
    process = launch()
    try:
        direct = await alice.room_with(bot_id)
        await alice.wait_replies(direct, bot_id, 1, timeout=90)
        await alice.say(direct, "Can I talk to a real person, please?")
        offer = body((await alice.wait_replies(direct, bot_id, 2, timeout=30))[-1])
        assert said("Talk to a person", offer) or said("Yes, hand over", offer)
        await alice.say(direct, "1")
        await alice.wait_replies(direct, bot_id, 3, timeout=30)
        await alice.say(direct, "My landlord sent me a letter I do not understand")
        (thread,) = await threads(counsellor, room, bot_id, 2)
        process.send_signal(signal.SIGKILL)  # down hard in the middle of the case
        process.wait(10)
        await answer_in_thread(counsellor, room, thread, "Please send me a photo of the first page.")
        process = launch()
        reply = body((await alice.wait_replies(direct, bot_id, 4, timeout=90))[-1])
        assert "photo of the first page" in reply and said("A counsellor (a person) writes:", reply)
        await alice.say(direct, "!lotse stop")  # the newcomer on Matrix ends it
        ended = body((await alice.wait_replies(direct, bot_id, 5, timeout=30))[-1])
        assert said("The conversation with the counsellor has ended. You can ask me again at any time.", ended)
        await _wait_thread(counsellor, room, bot_id, thread, "Die Person hat das Gespräch beendet")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        await alice.close()


async def test_a_counsellors_reply_waits_out_a_locked_database(lotse, desk, api):
    import sqlite3

    counsellor, account, room = desk
    await telegram_hands_over(api, 71)
    (root,) = await threads(counsellor, room, account["user_id"], 1)
    blocker = sqlite3.connect(lotse.directory / "bot.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the database takes no writes for longer than the store waits
    try:
        await answer_in_thread(counsellor, room, root, "Antwort, während die Datenbank gesperrt ist")
        await asyncio.sleep(7.0)
        assert not any("gesperrt" in t for t in telegram_texts(api, 71))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await api.wait_for(lambda: any("gesperrt" in t for t in telegram_texts(api, 71)), 40)
    await asyncio.sleep(1.0)
    assert sum("gesperrt" in t for t in telegram_texts(api, 71)) == 1
