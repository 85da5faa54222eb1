"""`bildungslotse bench replicas`, and the harness of the replica test: several `bildungslotse run`
processes on one PostgreSQL and one Redis, in webhook mode, with a Bot API server on loopback.

Updates are posted to the replicas' webhooks round-robin, the way a load balancer would, some of
them twice on purpose; a post that gets no 200 (a replica busy with it, or dead) is posted again
to the next replica, as Telegram delivers an unconfirmed update again. Every reply the loopback
server accepts is counted per chat: an update answered twice shows as a chat with twice the
replies, a lost one as a chat with none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Config

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WEBHOOK_PATH = "/tg/city"
SECRET_TOKEN = "replica_test_secret"
TEXTS = ("/help", "/privacy", "/start", "/topics")  # replies of one message each, whatever the catalogue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def create_database(admin_url: str = POSTGRES_ADMIN_URL) -> str | None:
    """A fresh database on the PostgreSQL server (its URL), or None when no server answers."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"replicas_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text(f'CREATE DATABASE "{name}"')), 10)
    except Exception:  # noqa: BLE001 - no usable server here
        return None
    finally:
        await engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@dataclass
class Replica:
    index: int
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    """Replicas of one city's bot against `api` (a FakeBotApi), `database_url` and Redis."""

    api: object
    database_url: str
    catalogue: Path
    work: Path
    municipality: str = "kassel"
    lease_s: float = 6.0
    update_lease_s: float = 4.0
    send_per_second: float = 5000.0
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    replicas: list[Replica] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MATRIX_"))}
        env.update({"DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL, "BILDUNGSLOTSE_SECRET": self.secret,
                    "TELEGRAM_BOT_TOKEN": self.api.token, "TELEGRAM_WEBHOOK_SECRET": SECRET_TOKEN,  # type: ignore[attr-defined]
                    "PYTHONUNBUFFERED": "1"})
        env.pop("BILDUNGSLOTSE_CONFIG", None)
        return env

    def start(self, count: int) -> list[Replica]:
        started = []
        for _ in range(count):
            index = len(self.replicas)
            port = free_port()
            folder = self.work / f"replica-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "config.yaml"
            config.write_text(
                f"municipality: {self.municipality}\n"
                f"catalogue: {self.catalogue.resolve()}\n"
                f"data_dir: {folder / 'data'}\n"
                "telegram:\n"
                f"  base_url: {self.api.base_url}\n"  # type: ignore[attr-defined]
                f"  webhook: {{url: 'https://bots.example.org{WEBHOOK_PATH}', listen: 127.0.0.1, port: {port}}}\n"
                f"replicas: {{lease_seconds: {self.lease_s}, update_lease_seconds: {self.update_lease_s}, "
                f"send_per_second: {self.send_per_second}}}\n", encoding="utf-8")
            log = folder / "replica.log"
            with log.open("wb") as out:
                process = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(config)],
                                           stdout=out, stderr=subprocess.STDOUT, env=self.env())
            replica = Replica(index, port, process, log)
            self.replicas.append(replica)
            started.append(replica)
        return started

    async def wait_ready(self, replicas: list[Replica], timeout: float = 180.0) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            for replica in replicas:
                while True:
                    if not replica.alive:
                        raise RuntimeError(f"replica {replica.index} ended:\n{replica.log.read_text()[-3000:]}")
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with session.get(f"http://127.0.0.1:{replica.port}/healthz") as response:
                            if response.status == 200:
                                break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"replica {replica.index} not ready:\n{replica.log.read_text()[-3000:]}")
                    await asyncio.sleep(0.3)

    def kill(self, replica: Replica) -> None:
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait()

    def stop(self) -> list[int]:
        codes = []
        for replica in self.replicas:
            if replica.alive:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                codes.append(replica.process.wait(60))
            except subprocess.TimeoutExpired:
                replica.process.kill()
                codes.append(replica.process.wait())
        return codes


def make_update(update_id: int, chat: int, text: str) -> dict:
    message = {"message_id": update_id, "date": int(time.time()), "text": text,
               "from": {"id": chat, "is_bot": False, "first_name": "Test", "language_code": "en"},
               "chat": {"id": chat, "type": "private", "first_name": "Test"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


@dataclass
class Posting:
    """Posts updates to the replicas round-robin until each got a 200 from one of them."""

    cluster: Cluster
    concurrency: int = 12
    retry_s: float = 0.5
    give_up_s: float = 120.0
    posted: int = 0  # requests sent, duplicates and retries included
    confirmed: set[int] = field(default_factory=set)
    retries: int = 0
    _next: int = 0

    def _target(self) -> Replica:
        replicas = self.cluster.replicas
        self._next += 1
        return replicas[self._next % len(replicas)]

    async def post_all(self, updates: list[dict], on_progress=None) -> None:
        import aiohttp

        queue: asyncio.Queue[dict] = asyncio.Queue()
        for update in updates:
            queue.put_nowait(update)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            async def worker() -> None:
                while not queue.empty():
                    update = queue.get_nowait()
                    await self._deliver(session, update)
                    if on_progress:
                        await on_progress(self)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _deliver(self, session, update: dict) -> None:
        import aiohttp

        deadline = time.monotonic() + self.give_up_s
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN}
        while time.monotonic() < deadline:
            replica = self._target()
            self.posted += 1
            try:
                async with session.post(replica.url, json=update, headers=headers) as response:
                    if response.status == 200:
                        self.confirmed.add(update["update_id"])
                        return
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            self.retries += 1
            await asyncio.sleep(self.retry_s)
        raise TimeoutError(f"update {update['update_id']} got no 200 in {self.give_up_s:.0f} s")


def replies_per_chat(api, chats) -> Counter:
    wanted = set(chats)
    return Counter(int(c.params["chat_id"]) for c in api.calls
                   if c.method == "sendMessage" and c.ok and int(c.params["chat_id"]) in wanted)


def anomalies(api, updates: list[dict]) -> tuple[int, int, dict[str, int]]:
    """(chats answered more than once, chats not answered, replies per answer of each text): a
    text's normal number of replies is the one most of its chats got."""
    chats = {u["message"]["chat"]["id"]: u["message"]["text"] for u in updates}
    per_chat = replies_per_chat(api, chats)
    normal = {}
    for text in set(chats.values()):
        counts = Counter(per_chat[c] for c, t in chats.items() if t == text)
        normal[text] = counts.most_common(1)[0][0]
    twice = sum(1 for c, t in chats.items() if per_chat[c] > normal[t])
    lost = sum(1 for c in chats if per_chat[c] == 0)
    return twice, lost, normal


def updates_for(chats: range, duplicate_every: int = 10, first_id: int = 1) -> tuple[list[dict], list[dict]]:
    """One update per chat (texts in turn), and every `duplicate_every`-th once more."""
    updates = [make_update(first_id + i, chat, TEXTS[i % len(TEXTS)]) for i, chat in enumerate(chats)]
    duplicates = updates[::duplicate_every] if duplicate_every else []
    return updates, duplicates


def interleave(updates: list[dict], duplicates: list[dict]) -> list[dict]:
    """The duplicates a while after their originals, so another replica likely gets them."""
    out, extra = [], list(duplicates)
    for index, update in enumerate(updates):
        out.append(update)
        if index % 10 == 5 and extra:
            out.append(extra.pop(0))
    return out + extra


async def run_replicas_bench(config: Config, catalogue: Path, updates: int = 1000, counts=(1, 2, 3)) -> int:
    try:
        from bot.loopback.telegram_api import FakeBotApi
    except ImportError as exc:
        print(f"bench replicas needs the test extras (pip install 'bildungslotse[test]'): {exc}")
        return 2
    import tempfile

    figures = {}
    for count in counts:
        database = await create_database()
        if database is None:
            print(f"bench replicas needs PostgreSQL at {POSTGRES_ADMIN_URL} (set BENCH_POSTGRES_URL)")
            return 2
        api = await FakeBotApi(token=f"{secrets.randbelow(10**9)}:BENCH").start()
        with tempfile.TemporaryDirectory() as tmp:
            cluster = Cluster(api, database, catalogue, Path(tmp), municipality=config.municipality)
            try:
                cluster.start(count)
                await cluster.wait_ready(cluster.replicas)
                chats = range(5_000_000, 5_000_000 + updates)
                batch, duplicates = updates_for(chats)
                posting = Posting(cluster, concurrency=8 * count)
                started = time.monotonic()
                await posting.post_all(interleave(batch, duplicates))
                elapsed = time.monotonic() - started
                twice, lost, _ = anomalies(api, batch)
                figures[count] = (updates / elapsed, twice, lost)
                print(f"{count} replica(s): {updates} updates (+{len(duplicates)} posted twice) answered in "
                      f"{elapsed:.1f} s: {updates / elapsed:.0f} updates/s; answered twice {twice}, lost {lost}",
                      flush=True)
            finally:
                cluster.stop()
                await api.stop()
                await drop_database(database)
    print(" ".join(f"replicas{n}_updates_per_s={f[0]:.0f}" for n, f in figures.items()) + " "
          f"duplicates={sum(f[1] for f in figures.values())} lost={sum(f[2] for f in figures.values())}")
    return 0
