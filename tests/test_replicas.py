"""Three replicas of `bildungslotse run` on PostgreSQL and Redis, in webhook mode, on loopback:
2,000 updates posted round-robin (some twice), one replica killed with SIGKILL in the middle.
Every update is answered exactly once, a news item reaches each of 500 subscribers once, and the
leader jobs move to a surviving replica within 30 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.bench_replicas import (
    Cluster,
    Posting,
    anomalies,
    create_database,
    drop_database,
    interleave,
    replies_per_chat,
    updates_for,
)
from bot.loopback.telegram_api import FakeBotApi
from bot.store import Pseudonyms, Store

MUSTERSTADT = Path(__file__).parent / "data" / "musterstadt"  # fictional test data
CITY = "musterstadt"
LEADER = f"{CITY}:leader"
SUBSCRIBERS = range(9_000_000, 9_000_500)


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
async def database():
    url = await create_database()
    if url is None:
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")
    yield url
    await drop_database(url)


async def subscribe(database: str, secret: str, chats: range) -> Store:
    store = await Store.open(database, Pseudonyms(secret.encode()), municipality=CITY, shared=True)
    for chat in chats:
        key = store.key("telegram", chat)
        await store.set_prefs(key, language="en")
        await store.subscribe(key, "daycare", "telegram", str(chat))
    await store.flush()
    return store


async def test_three_replicas_answer_every_update_once_through_a_sigkill(database, tmp_path):
    if not redis_answers():
        pytest.skip("no Redis answers at 127.0.0.1:6379")
    from bot.app import build_catalogue_and_matcher
    from bot.config import Config

    # The ranker of the test city trained once, here: the replicas find it in the shared cache.
    await asyncio.to_thread(build_catalogue_and_matcher, MUSTERSTADT, Config())
    api = await FakeBotApi(token=f"{int(time.time())}:REPLICAS").start()
    cluster = Cluster(api, database, MUSTERSTADT, tmp_path, municipality=CITY, lease_s=6.0, update_lease_s=4.0)
    store = await subscribe(database, cluster.secret, SUBSCRIBERS)
    try:
        cluster.start(3)
        await cluster.wait_ready(cluster.replicas)
        updates, duplicates = updates_for(range(1, 2001), duplicate_every=10)
        posting = Posting(cluster, concurrency=12)
        killed: dict[str, float | str] = {}
        watching: list[asyncio.Task] = []

        async def kill_the_leader_midway(progress: Posting) -> None:
            done = len(progress.confirmed)
            # in the middle of both: the updates, and the news (sent at 25 a second meanwhile)
            if killed or done < 300 or done % 10:
                return
            if done < 900 and len(replies_per_chat(api, SUBSCRIBERS)) < 200:
                return
            killed["at"] = 0.0  # once
            holder = await store.lease_holder(LEADER)
            assert holder, "no replica leads"
            leader = next(r for r in cluster.replicas if f"-{r.process.pid}-" in holder)
            api.flowing.clear()  # replies in flight stay in flight: the kill lands while they are
            await asyncio.sleep(1.0)
            cluster.kill(leader)
            await asyncio.sleep(0.5)  # the loopback server notices the closed connections first
            killed.update(at=time.monotonic(), holder=holder, sent_news=len(replies_per_chat(api, SUBSCRIBERS)))
            api.flowing.set()
            watching.append(asyncio.create_task(watch_the_lease(holder)))

        async def watch_the_lease(dead: str) -> tuple[float, str]:
            while (holder := await store.lease_holder(LEADER)) in (None, dead):
                if time.monotonic() - float(killed["at"]) > 60:
                    return 60.0, ""
                await asyncio.sleep(0.2)
            return time.monotonic() - float(killed["at"]), holder

        await posting.post_all(interleave(updates, duplicates), on_progress=kill_the_leader_midway)
        assert killed.get("holder"), "the leader was not killed"
        assert sum(not r.alive for r in cluster.replicas) == 1

        # The leader jobs move: a surviving replica holds the lease within 30 s.
        moved_s, holder = await watching[0]
        assert moved_s < 30, "no replica took over the leader jobs within 30 s"
        assert any(f"-{r.process.pid}-" in holder for r in cluster.replicas if r.alive)

        # Every update answered exactly once, none lost, the duplicates not answered again.
        assert len(posting.confirmed) == 2000
        twice, lost, normal = anomalies(api, updates)
        assert (twice, lost) == (0, 0)
        assert all(count >= 1 for count in normal.values())

        # The news item reaches each of the 500 subscribers once, across the change of leader.
        deadline = time.monotonic() + 90
        while len(replies_per_chat(api, SUBSCRIBERS)) < len(SUBSCRIBERS) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # a second copy would show by now
        news = replies_per_chat(api, SUBSCRIBERS)
        assert sorted(set(news.values())) == [1] and len(news) == len(SUBSCRIBERS)
        assert 0 < int(killed["sent_news"]) < len(SUBSCRIBERS), "the leader did not die in the middle of the news"
        assert all("Test news" in c.params["text"] for c in api.calls
                   if c.method == "sendMessage" and c.ok and int(c.params["chat_id"]) in SUBSCRIBERS)
        print(f"\nleader moved in {moved_s:.1f} s; {posting.posted} posts for 2000 updates "
              f"(+{len(duplicates)} duplicates, {posting.retries} retries); news sent before the kill: "
              f"{killed['sent_news']}")
    finally:
        codes = cluster.stop()
        await store.close()
        await api.stop()
    assert [c for c in codes if c != -9] == [0, 0]  # the survivors stop cleanly on SIGTERM
