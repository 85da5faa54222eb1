"""Matrix: the bot against a real Synapse homeserver on loopback, talked to through matrix-nio."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.catalogue import load_catalogue
from bot.config import MatrixSettings
from bot.engine import Engine
from bot.loopback.synapse import Synapse, available
from bot.service import Service
from bot.store import Pseudonyms, Store
from bot.transports import notices
from bot.transports.matrix import MatrixTransport
from tests.helpers import TEST_SECRET
from tests.http_faults import FaultyProxy
from tests.matrix_helpers import Person, body, unique

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not available(), reason="Synapse (matrix-synapse, in the test extras) is not installed")


class Bot:
    """The bot in this process, with its own account, store and key directory."""

    def __init__(self, synapse: Synapse, directory: Path, name: str | None = None, admins: tuple[str, ...] = (),
                 homeserver: str | None = None, password: bool = False) -> None:
        self.synapse, self.directory, self.admins = synapse, directory, admins
        self.homeserver, self.password = homeserver or synapse.url, password
        self.account = synapse.register(name or unique("lotse"))
        self.user_id = self.account["user_id"]

    @staticmethod
    async def admin(command: str) -> str:
        return f"ADMIN ANSWER: {command}, with the unanswered questions"

    async def start(self) -> Bot:
        catalogue = load_catalogue(ROOT / "offers" / "kassel")
        self.store = await Store.open(f"sqlite+aiosqlite:///{self.directory}/bot.db", Pseudonyms(b"m"))
        login = {"password": "password"} if self.password else {"token": self.account["access_token"]}
        settings = MatrixSettings(homeserver=self.homeserver, user_id=self.user_id, admins=self.admins, **login)
        self.transport = MatrixTransport(settings, Service(Engine(catalogue, build_matcher(catalogue)), self.store, "matrix"),
                                         self.store, self.directory, admin=self.admin)
        await self.transport.start()
        self.task = asyncio.create_task(self.transport.run())
        return self

    async def stop(self) -> None:
        self.transport.stop()
        await asyncio.wait_for(self.task, 40)
        await self.transport.shutdown()
        await self.store.close()


@pytest.fixture
async def bot(synapse, tmp_path):
    running = await Bot(synapse, tmp_path / "bot").start()
    yield running
    await running.stop()


@pytest.fixture
async def alice(synapse, tmp_path):
    person = Person(synapse, unique("alice"), tmp_path / "alice")
    await person.sync(0)
    yield person
    await person.close()


async def test_invite_join_greeting_and_questions_in_three_scripts(bot, alice):
    room = await alice.room_with(bot.user_id)
    greeting = (await alice.wait_replies(room, bot.user_id, 1))[0]
    assert "Bildungslotse" in body(greeting) and "1." in body(greeting)
    for n, (question, word) in enumerate([("وين بلاقي Kita لابني؟", "Kibeka"), ("де курси німецької", "Integrationskurs"),
                                          ("kreş nasıl bulurum", "Kibeka")], start=2):
        await alice.say(room, question)
        reply = (await alice.wait_replies(room, bot.user_id, n))[-1]
        assert word in body(reply)
        content = reply["content"]
        assert content["format"] == "org.matrix.custom.html" and "<b>" in content["formatted_body"]
    assert "\u200f" in body((await alice.replies(room, bot.user_id))[1])  # the Arabic answer reads right-to-left


async def test_numbered_choices_answer_buttons(bot, alice):
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    await alice.say(room, "Kita")
    answer = body((await alice.wait_replies(room, bot.user_id, 2))[-1])
    assert "1. " in answer and not re.search(r"^\d+\. \d+\. ", answer, re.MULTILINE)  # numbered once
    await alice.say(room, "1")
    card = body((await alice.wait_replies(room, bot.user_id, 3))[-1])
    assert "kibeka.kassel.de" in card
    await alice.say(room, "!lotse language ar")
    arabic = body((await alice.wait_replies(room, bot.user_id, 4))[-1])
    assert "\u200f" in arabic and notices.choose_by_number("ar") in arabic and "Answer with the number" not in arabic
    await alice.say(room, "²")  # looks like a number to str.isdigit(): a question, not a crash
    await alice.wait_replies(room, bot.user_id, 5)
    await alice.say(room, "!lotse privacy")
    privacy = body((await alice.wait_replies(room, bot.user_id, 6))[-1])
    assert "!lotse forget" in privacy and "/forget" not in privacy


async def test_in_a_room_with_more_people_only_mentions_and_the_prefix(bot, alice, synapse, tmp_path):
    bob = Person(synapse, unique("bob"), tmp_path / "bob")
    try:
        room = await alice.room_with(bot.user_id, bob.user_id, direct=False)
        await bob.sync(0)
        await bob.join(room)
        await alice.wait_replies(room, bot.user_id, 1)  # the greeting
        await alice.say(room, "wo gibt es einen Deutschkurs?")
        await alice.say(room, f"{bot.user_id.split(':')[0].lstrip('@')}: wo gibt es einen Deutschkurs?", mentions=[bot.user_id])
        await alice.say(room, "!lotse topics")
        replies = await alice.wait_replies(room, bot.user_id, 3)
        assert await alice.quiet_for(room, bot.user_id, 1.5) == 3
        assert "Integrationskurs" in body(replies[1])
    finally:
        await bob.close()


async def test_admin_commands_only_in_a_direct_chat(synapse, alice, tmp_path):
    bob = Person(synapse, unique("bob"), tmp_path / "bob")
    admin_bot = await Bot(synapse, tmp_path / "admin-bot", admins=(alice.user_id,)).start()
    try:
        group = await alice.room_with(admin_bot.user_id, bob.user_id, direct=False)
        await bob.sync(0)
        await bob.join(group)
        await alice.wait_replies(group, admin_bot.user_id, 1)  # the greeting
        await alice.say(group, "!lotse stats")
        in_group = body((await alice.wait_replies(group, admin_bot.user_id, 2))[-1])
        assert "ADMIN ANSWER" not in in_group and "!lotse topics" in in_group  # the help, not the figures
        direct = await alice.room_with(admin_bot.user_id)
        await alice.wait_replies(direct, admin_bot.user_id, 1)
        await alice.say(direct, "!lotse stats")
        assert body((await alice.wait_replies(direct, admin_bot.user_id, 2))[-1]) == "ADMIN ANSWER: stats, with the unanswered questions"
    finally:
        await admin_bot.stop()
        await bob.close()


async def test_several_messages_in_one_sync_batch_are_all_answered(bot, alice):
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    bot.transport.stop()  # pause the bot while five messages arrive
    await asyncio.wait_for(bot.task, 40)
    for n in range(5):
        await alice.say(room, f"Kita {n}")
    bot.transport._stop.clear()
    bot.task = asyncio.create_task(bot.transport.run())
    await alice.wait_replies(room, bot.user_id, 6)
    assert await alice.quiet_for(room, bot.user_id, 1.0) == 6


async def test_a_limited_timeline_is_filled_from_history(bot, alice):
    """More messages arrive while the bot is away than one sync returns (100): none is lost."""
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    bot.transport.stop()
    await asyncio.wait_for(bot.task, 40)
    for n in range(130):
        await alice.say(room, f"Kita {n}")
    bot.transport._stop.clear()
    bot.task = asyncio.create_task(bot.transport.run())
    await alice.wait_replies(room, bot.user_id, 131, timeout=120)
    assert await alice.quiet_for(room, bot.user_id, 1.0) == 131


async def test_a_burst_of_fifty_messages_is_answered(bot, alice):
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    await asyncio.gather(*(alice.say(room, f"Deutschkurs {n}") for n in range(50)))
    await alice.wait_replies(room, bot.user_id, 51, timeout=90)


async def test_html_in_user_text_is_escaped(bot, alice):
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    await alice.say(room, "<script>alert(1)</script> Kita <b>", html="<script>alert(1)</script> Kita")
    reply = (await alice.wait_replies(room, bot.user_id, 2))[-1]
    assert "<script>" not in reply["content"]["formatted_body"] and "<script>" not in body(reply)


async def test_encrypted_direct_chat(bot, alice):
    room = await alice.room_with(bot.user_id, encrypted=True)
    greeting = (await alice.wait_replies(room, bot.user_id, 1))[0]
    assert greeting["was_encrypted"] and "Bildungslotse" in body(greeting)  # encrypted, and alice could read it
    await alice.say(room, "kreş nasıl bulurum")
    answer = (await alice.wait_replies(room, bot.user_id, 2))[-1]
    assert answer["was_encrypted"] and "Kibeka" in body(answer)


async def test_password_and_token_login_keep_their_device_across_restarts(synapse, alice, tmp_path):
    """matrix-nio 0.26's login() has no device_id argument: the password login crashed at start."""
    for password in (True, False):
        bot = await Bot(synapse, tmp_path / f"bot-{password}", password=password).start()
        device = bot.transport.client.device_id
        room = await alice.room_with(bot.user_id, encrypted=True)
        await alice.wait_replies(room, bot.user_id, 1)
        await bot.stop()
        await bot.start()  # a restart: the same device, so the same encryption keys
        try:
            assert bot.transport.client.device_id == device
            assert (tmp_path / f"bot-{password}" / "matrix" / "device_id").read_text() == device
            if not password:
                assert device == bot.account["device_id"]  # the token's own device
            await alice.say(room, "Kita")
            reply = (await alice.wait_replies(room, bot.user_id, 2))[-1]
            assert reply["was_encrypted"] and "Kibeka" in body(reply)
        finally:
            await bot.stop()


async def test_a_reply_that_fails_on_the_way_is_retried_and_sent_once(synapse, alice, tmp_path):
    proxy = await FaultyProxy(synapse.url).start()
    bot = await Bot(synapse, tmp_path / "bot", homeserver=proxy.url).start()
    try:
        room = await alice.room_with(bot.user_id)
        await alice.wait_replies(room, bot.user_id, 1)
        proxy.send_502, proxy.send_drop = 2, 1
        await alice.say(room, "Kita")
        assert "Kibeka" in body((await alice.wait_replies(room, bot.user_id, 2))[-1])
        proxy.send_502 = 6  # longer than one round of retries (5): the batch is handled again, later
        await alice.say(room, "Deutschkurs")
        assert "Integrationskurs" in body((await alice.wait_replies(room, bot.user_id, 3, timeout=90))[-1])
        assert await alice.quiet_for(room, bot.user_id, 2.0) == 3 and proxy.failed == 9  # each reply once
    finally:
        await bot.stop()
        await proxy.stop()


async def test_synapse_restarted_under_the_bot(bot, alice, synapse):
    room = await alice.room_with(bot.user_id)
    await alice.wait_replies(room, bot.user_id, 1)
    synapse.restart()
    await alice.say(room, "Kita")
    await alice.wait_replies(room, bot.user_id, 2, timeout=60)


def _config(tmp_path: Path, synapse: Synapse, user_id: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nmatrix:\n  homeserver: {synapse.url}\n  user_id: \"{user_id}\"\n",
                      encoding="utf-8")
    return config


def _launch(config: Path, token: str) -> subprocess.Popen:
    env = {**os.environ, "MATRIX_ACCESS_TOKEN": token, "BILDUNGSLOTSE_SECRET": TEST_SECRET}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    log = (config.parent / "bot.log").open("a")
    return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=log)


async def test_restarts_graceful_and_kill_9(synapse, alice, tmp_path):
    account = synapse.register(unique("lotse"))
    bot_id = account["user_id"]
    config = _config(tmp_path, synapse, bot_id)
    room = await alice.room_with(bot_id, encrypted=True)
    await alice.say(room, "Kita, before the bot ever ran")  # history: never answered
    process = _launch(config, account["access_token"])
    try:
        await alice.wait_replies(room, bot_id, 1, timeout=60)  # the greeting only
        sent = 0
        for _ in range(5):
            sent += 1
            await alice.say(room, f"Deutschkurs {sent}")
        process.send_signal(signal.SIGTERM)  # graceful, with messages arriving
        for _ in range(5):
            sent += 1
            await alice.say(room, f"Deutschkurs {sent}")
        assert process.wait(60) == 0
        process = _launch(config, account["access_token"])
        await alice.wait_replies(room, bot_id, 1 + sent, timeout=60)
        assert await alice.quiet_for(room, bot_id, 2.0) == 1 + sent  # each exactly once, no history
        for _ in range(5):
            sent += 1
            await alice.say(room, f"Kita {sent}")
        await alice.wait_replies(room, bot_id, 1 + sent - 3, timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        for _ in range(3):
            sent += 1
            await alice.say(room, f"Kita {sent}")
        process = _launch(config, account["access_token"])
        replies = await alice.wait_replies(room, bot_id, 1 + sent, timeout=60)
        assert all(r["was_encrypted"] and body(r) for r in replies)  # encrypted and readable after restarts
        answered = await alice.quiet_for(room, bot_id, 2.0)
        assert 1 + sent <= answered <= 1 + sent + 1  # none lost; only the one in flight twice
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
