"""Several municipalities in one deployment: the config, the store's rows per city, the editors'
commands with --municipality, and the pieces replicas share (leases, the Redis send limit)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, ConfigError, load_config
from bot.store import Pseudonyms, Store

MUSTERSTADT = Path(__file__).parent / "data" / "musterstadt"  # fictional test data
SECRET = b"cities-test-secret-of-32-bytes-or-more"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


TWO_CITIES = f"""\
default_language: de
telegram:
  admins: [11]
municipalities:
  musterstadt:
    catalogue: {MUSTERSTADT}
    default_language: en
    telegram:
      token_env: MUSTERSTADT_TELEGRAM_TOKEN
      admins: [22]
      webhook: {{url: https://bots.example.org/tg/musterstadt, port: 8444}}
replicas:
  lease_seconds: 10
"""


def test_a_config_names_several_municipalities(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:kassel")
    monkeypatch.setenv("MUSTERSTADT_TELEGRAM_TOKEN", "2:muster")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    config = load_config(write_config(tmp_path, TWO_CITIES))
    assert [c.municipality for c in config.cities()] == ["kassel", "musterstadt"]
    kassel, muster = config.city("kassel"), config.city("musterstadt")
    assert kassel.telegram.token == "1:kassel" and kassel.telegram.admins == (11,) and kassel.municipalities == ()
    assert muster.telegram.token == "2:muster" and muster.telegram.admins == (22,)
    assert muster.telegram.webhook_url == "https://bots.example.org/tg/musterstadt"
    assert muster.telegram.webhook_secret == "s3cret" and muster.telegram.webhook_port == 8444
    assert muster.catalogue == MUSTERSTADT and muster.default_language == "en"
    assert muster.data_dir == kassel.data_dir and muster.replicas.lease_s == 10.0
    assert muster.replicas.redis_url == "redis://127.0.0.1:6379/0"
    assert config.city(None).municipality == "kassel"
    with pytest.raises(ConfigError, match="unknown municipality 'nowhere' .configured: kassel, musterstadt"):
        config.city("nowhere")


def test_a_single_city_config_stays_as_it_was(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config(write_config(tmp_path, "default_language: de\n"))
    assert config.cities() == (config,) and config.municipality == "kassel" and not config.shared_store
    assert load_config(None).cities() == (load_config(None),)


@pytest.mark.parametrize(("text", "message"), [
    ("municipalities:\n  Muster Stadt:\n    catalogue: x\n", "lower-case letters"),
    ("municipalities:\n  kassel:\n    catalogue: x\n", "configured twice"),
    ("municipalities:\n  musterstadt:\n    telegram:\n      admins: [1]\n", "needs token_env"),
    ("municipalities:\n  musterstadt:\n    colour: blue\n", "unknown setting 'municipalities.musterstadt.colour'"),
    ("municipalities:\n  musterstadt:\n    telegram:\n      token_env: lower\n", "environment variable"),
    ("municipalities: [a, b]\n", "must be a section"),
    ("replicas:\n  lease_seconds: 0\n", "above 0"),
])
def test_a_wrong_municipality_setting_is_one_clear_sentence(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(write_config(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "config.yaml") + ":")


async def test_each_city_has_its_own_people_figures_links_and_news(target):
    url, connect_args = target
    kassel = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args)
    muster = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args, municipality="musterstadt")
    try:
        # The same Telegram user in two cities' bots: two relationships, Kassel's key unchanged.
        assert kassel.key("telegram", 5) == Pseudonyms(SECRET).key("telegram", 5) != muster.key("telegram", 5)
        await kassel.set_prefs(kassel.key("telegram", 5), language="ar")
        await muster.subscribe(muster.key("telegram", 5), "daycare", "telegram", "5")
        for store, questions in ((kassel, 3), (muster, 1)):
            for _ in range(questions):
                store.record("question", "telegram", "de", "daycare", None, True)
            store.count_referral("de-daycare", True)
            store.keep_unanswered("de", f"a question in {store.municipality}")
        await kassel.flush()
        await muster.flush()
        since = date(2000, 1, 1)
        assert len(await kassel.event_rows(since)) == 3 and len(await muster.event_rows(since)) == 1
        assert [r.count for r in await kassel.referral_rows()] == [1] == [r.count for r in await muster.referral_rows()]
        assert [r.text for r in await muster.unanswered_rows()] == ["a question in musterstadt"]
        # The same news id in both catalogues: each city's subscribers, once.
        assert await kassel.enqueue_news("n-1", "daycare") == 0
        assert await muster.enqueue_news("n-1", "daycare") == 1
        assert await muster.enqueue_news("n-1", "daycare") == 0
        assert [i.address for i in await muster.outbox_pending()] == ["5"] and await kassel.outbox_pending() == []
        await kassel.set_sync("matrix.next_batch", "k1")
        await muster.set_sync("matrix.next_batch", "m1")
        await kassel.flush()
        await muster.flush()
        assert (await kassel.get_sync("matrix.next_batch"), await muster.get_sync("matrix.next_batch")) == ("k1", "m1")
        assert (await kassel.prefs(kassel.key("telegram", 5))).language == "ar"
        assert (await muster.prefs(muster.key("telegram", 5))).language is None
    finally:
        await kassel.close()
        await muster.close()


async def test_rows_from_before_the_migration_are_kassels(target):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.store.store import _upgrade

    url, connect_args = target
    engine = create_async_engine(url, connect_args=connect_args or {})
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, "0003")
        await conn.execute(text("INSERT INTO referrals VALUES ('de-daycare', true, 7, '2026-01-01', '2026-02-01')"))
        await conn.execute(text("INSERT INTO events (day, kind, transport) VALUES ('2026-01-02', 'question', 'telegram')"))
        await conn.execute(text("INSERT INTO answered_updates VALUES ('telegram', '41', '2026-01-02 00:00:00+00')"))
    await engine.dispose()
    store = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args)
    try:
        assert [(r.payload, r.count) for r in await store.referral_rows()] == [("de-daycare", 7)]
        assert len(await store.event_rows(date(2026, 1, 1))) == 1
        assert await store.answered("telegram", [41, 42]) == {"41"}
    finally:
        await store.close()


async def test_an_update_is_claimed_by_one_replica_and_taken_over_when_its_lease_ran_out(target):
    url, connect_args = target
    store = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args)
    try:
        assert await store.claim("telegram", 7, "replica-a", 30) == "claimed"
        assert await store.claim("telegram", 7, "replica-b", 30) == "busy"
        assert await store.extend("telegram", 7, "replica-a", 30)
        assert not await store.extend("telegram", 7, "replica-b", 30)
        await store.finish("telegram", 7)
        assert await store.claim("telegram", 7, "replica-b", 30) == "answered"
        assert await store.answered("telegram", [7]) == {"7"}
        # replica-a dies holding update 8: once its lease ran out, replica-b answers it
        assert await store.claim("telegram", 8, "replica-a", 0.3) == "claimed"
        assert await store.answered("telegram", [8]) == set()
        await asyncio.sleep(0.5)
        assert await store.claim("telegram", 8, "replica-b", 30) == "claimed"
        # a reply that did not get through: released, the next delivery claims it at once
        await store.release("telegram", 8)
        assert await store.claim("telegram", 8, "replica-c", 30) == "claimed"
        # another city's bot has update ids of its own
        assert await store.claim("telegram@musterstadt", 7, "replica-a", 30) == "claimed"
    finally:
        await store.close()


async def test_a_leader_job_runs_in_one_replica_and_moves_on_a_graceful_stop(tmp_path):
    from bot.replicas import Leadership

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(SECRET))
    running: list[str] = []

    def job(name: str):
        async def run() -> None:
            running.append(name)
            await asyncio.Event().wait()
        return run

    a, b = Leadership(store, "replica-a", ttl_s=0.6), Leadership(store, "replica-b", ttl_s=0.6)
    first = asyncio.create_task(a.run("kassel:leader", job("a")))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(b.run("kassel:leader", job("b")))
    try:
        await asyncio.sleep(1.5)  # several renewals
        assert running == ["a"] and await store.lease_holder("kassel:leader") == "replica-a"
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        for _ in range(30):
            if running == ["a", "b"]:
                break
            await asyncio.sleep(0.1)
        assert running == ["a", "b"] and await store.lease_holder("kassel:leader") == "replica-b"
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        await store.close()


async def test_the_send_limit_is_shared_by_replicas_through_redis():
    import secrets

    import redis

    from bot.replicas import SharedRateLimiter

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis answers at 127.0.0.1:6379")
    bot = f"test-{secrets.token_hex(4)}"
    limiters = [SharedRateLimiter("redis://127.0.0.1:6379/0", bot, per_second=15) for _ in range(2)]
    sent: list[float] = []

    async def send() -> bool:
        sent.append(time.time())
        return True

    for limiter in limiters:
        await limiter.initialize()
    try:
        await asyncio.gather(*(limiters[i % 2].process_request(send, (), {}, "sendMessage", {}, None)
                               for i in range(45)))
        # not limited: what does not go to a chat
        await limiters[0].process_request(send, (), {}, "getMe", {}, None)
    finally:
        for limiter in limiters:
            await limiter.shutdown()
    per_second = {}
    for at in sent[:45]:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    assert len(sent) == 46 and max(per_second.values()) <= 15 and len(per_second) >= 3


async def test_a_place_that_comes_back_from_redis_after_its_second_is_not_used(monkeypatch):
    """The answer of Redis can arrive after the second it counted in has ended (a slow round
    trip): that place must not be used, or the next second sends more than the limit."""
    from bot import replicas

    clock = [100.95]
    counts: dict[str, int] = {}

    class Pipeline:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        def incr(self, key):
            self.key = key
            return self

        def expire(self, key, seconds):
            return self

        async def execute(self):
            counts[self.key] = counts.get(self.key, 0) + 1
            clock[0] += 0.1  # the round trip crosses into the next second the first time
            return [counts[self.key], True]

    class Redis:
        async def pttl(self, key):
            return -2

        def pipeline(self, transaction):
            return Pipeline()

    async def no_sleep(seconds):
        clock[0] += seconds

    monkeypatch.setattr(replicas.time, "time", lambda: clock[0])
    monkeypatch.setattr(replicas.asyncio, "sleep", no_sleep)
    limiter = replicas.SharedRateLimiter("redis://unused", "bot", per_second=15)
    limiter.redis = Redis()
    await limiter.slot()
    # asked in second 100, answered in 101: asked again and counted in 101
    assert counts == {"bildungslotse:bot:sent:100": 1, "bildungslotse:bot:sent:101": 1}
    assert int(clock[0]) == 101


def test_editors_commands_take_the_municipality(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = write_config(tmp_path, f"data_dir: data\nmunicipalities:\n  musterstadt:\n    catalogue: {MUSTERSTADT}\n")
    assert main(["--config", str(config), "validate", "--municipality", "musterstadt"]) == 0
    assert f"{MUSTERSTADT}: valid" in capsys.readouterr().out
    assert main(["--config", str(config), "coverage", "--municipality", "musterstadt"]) == 0
    assert "offers=8" in capsys.readouterr().out
    assert main(["--config", str(config), "preview", "muster-daycare", "--municipality", "musterstadt"]) == 0
    assert "Musterstadt (fiktiv)" in capsys.readouterr().out
    assert main(["--config", str(config), "--municipality", "musterstadt", "preview", "integrationskurs"]) == 2
    assert main(["--config", str(config), "stale", "--municipality", "musterstadt", "--months", "1"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "stats", "--municipality", "musterstadt"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["--config", str(config), "validate", "--municipality", "atlantis"]) == 2
    assert "unknown municipality 'atlantis'" in capsys.readouterr().err


async def test_stats_count_one_citys_questions(tmp_path, monkeypatch):
    from bot.stats import collect

    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    kassel = await Store.open(url, Pseudonyms(SECRET))
    muster = await Store.open(url, Pseudonyms(SECRET), municipality="musterstadt")
    try:
        for _ in range(4):
            kassel.record("question", "telegram", "de", "daycare", None, True)
        muster.record("question", "telegram", "de", "daycare", None, False)
        await kassel.flush()
        await muster.flush()
        (k_row,), (m_row,) = (await collect(kassel, weeks=2)).rows, (await collect(muster, weeks=2)).rows
        assert k_row[1:5] == ["daycare", "de", 4, 4] and m_row[1:5] == ["daycare", "de", 1, 0]
    finally:
        await kassel.close()
        await muster.close()


def test_the_second_city_is_fictional_test_data():
    for path in MUSTERSTADT.rglob("*.yaml"):
        assert "FICTIONAL TEST DATA" in path.read_text(encoding="utf-8").splitlines()[0], path
    assert not (Path(__file__).parents[1] / "offers" / "musterstadt").exists()
    assert Config().municipality == "kassel"


async def test_the_leaders_watcher_signals_and_every_replica_reloads(target, tmp_path):
    import shutil

    from bot.runner import RELOAD_SIGNAL, Runtime, follow_reloads

    url, connect_args = target
    folder = tmp_path / "musterstadt"
    shutil.copytree(MUSTERSTADT, folder)
    stores = [await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args, municipality="musterstadt",
                               shared=True) for _ in range(2)]
    reloads: list[int] = []
    runtimes = [Runtime(Config(), folder, None, store) for store in stores]  # type: ignore[arg-type]
    for index, runtime in enumerate(runtimes):
        async def reload(index: int = index) -> str:
            reloads.append(index)
            return "reloaded"
        runtime.reload = reload  # type: ignore[method-assign]
    name = RELOAD_SIGNAL + "musterstadt"

    async def signal() -> None:
        await stores[0].set_sync(name, str(time.time_ns()), wait_s=5)

    tasks = [asyncio.create_task(runtimes[0].watch(every_s=0.1, on_change=signal)),
             *(asyncio.create_task(follow_reloads(r, name, every_s=0.1)) for r in runtimes)]
    try:
        await asyncio.sleep(0.5)
        assert reloads == []
        (folder / "news.yaml").write_text((folder / "news.yaml").read_text() + "\n# edited\n")
        for _ in range(50):
            if sorted(reloads) == [0, 1]:
                break
            await asyncio.sleep(0.1)
        assert sorted(reloads) == [0, 1]  # the leader's watcher does not reload by itself: once each
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            await store.close()


async def test_one_process_runs_two_cities_bots(tmp_path):
    """`bildungslotse run` with two municipalities (SQLite, polling): each city's bot answers
    with its own catalogue."""
    import os
    import signal
    import subprocess
    import sys

    from bot.loopback.telegram_api import FakeBotApi

    kassel_api = await FakeBotApi(token="1:KASSEL").start()
    muster_api = await FakeBotApi(token="2:MUSTER").start()
    config = write_config(tmp_path, f"""\
telegram: {{base_url: "{kassel_api.base_url}"}}
municipalities:
  musterstadt:
    catalogue: {MUSTERSTADT}
    telegram: {{token_env: MUSTER_TOKEN, base_url: "{muster_api.base_url}"}}
""")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BILDUNGSLOTSE_CONFIG")}
    env.update(TELEGRAM_BOT_TOKEN=kassel_api.token, MUSTER_TOKEN=muster_api.token)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        for api in (kassel_api, muster_api):
            api.text("/help", uid=501)
        await kassel_api.wait_for(lambda: kassel_api.sent(chat_id=501), timeout=180)
        await muster_api.wait_for(lambda: muster_api.sent(chat_id=501), timeout=60)
        assert "Musterstadt" in muster_api.sent(chat_id=501)[0]["text"]
        assert "Kassel" in kassel_api.sent(chat_id=501)[0]["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        await kassel_api.stop()
        await muster_api.stop()
    assert code == 0, log.read_text()[-2000:]


async def test_each_city_has_its_own_editors_and_counsellors_cases(target):
    """One database, two cities: an editor of one cannot sign in to the other's workbench, and
    the counsellors of one never see the other's cases."""
    from bot.handover.cases import CaseStore
    from bot.web import accounts

    url, connect_args = target
    kassel = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args)
    muster = await Store.open(url, Pseudonyms(SECRET), connect_args=connect_args, municipality="musterstadt")
    try:
        await accounts.add_account(muster.engine, "mia", "editor", "a long password", "musterstadt")
        assert await accounts.verify(muster.engine, "mia", "a long password", "musterstadt") is not None
        assert await accounts.verify(kassel.engine, "mia", "a long password", "kassel") is None
        assert [a.name for a in await accounts.list_accounts(kassel.engine, "kassel")] == []
        assert not await accounts.remove_account(kassel.engine, "mia", "kassel")
        assert [a.name for a in await accounts.list_accounts(muster.engine, "musterstadt")] == ["mia"]

        kassel_cases, muster_cases = CaseStore(kassel), CaseStore(muster)
        await muster_cases.open(muster.key("telegram", 7), "telegram", "7", "de", None, "Frage", [])
        assert [c.language for c in await muster_cases.unposted()] == ["de"]
        assert await kassel_cases.unposted() == [] and await kassel_cases.open_cases() == []
    finally:
        await kassel.close()
        await muster.close()
