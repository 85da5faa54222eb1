"""`bildungslotse bench telegram`: the full stack (Bot API server on loopback, python-telegram-bot
Application, engine, store) answering updates: throughput on a backlog, and latency from an
update served to the first reply received at 100 updates/s offered. Rate limiter off: the
loopback server has no flood limits."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import build_engine
from bot.bench import QUESTIONS
from bot.config import Config, TelegramSettings
from bot.service import Service
from bot.store import Pseudonyms, Store


async def run_telegram_bench(config: Config, catalogue_dir: Path, backlog: int = 2000, rate: float = 100.0,
                             seconds: float = 5.0) -> int:
    try:
        from bot.loopback.telegram_api import FakeBotApi
        from bot.transports.telegram import TelegramTransport
    except ImportError as exc:
        print(f"bench telegram needs the test extras (pip install 'bildungslotse[test]'): {exc}")
        return 2
    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()]
    api = await FakeBotApi().start()
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp}/bench.db", Pseudonyms(b"bench"))
        service = Service(build_engine(config, catalogue_dir), store, "telegram")
        transport = TelegramTransport(TelegramSettings(token=api.token, base_url=api.base_url), service,
                                      rate_limit=False)
        await transport.start()
        poller = asyncio.create_task(transport.poll(timeout=1))

        def first_reply(chat_ids: range) -> dict[int, float]:
            return {c: t for c, t in api.first_reply.items() if c in chat_ids}

        # Throughput: a backlog of questions, each from its own chat.
        chats = range(1_000_000, 1_000_000 + backlog)
        update_of = {chat: api.text(questions[i % len(questions)], uid=chat, lang=None) for i, chat in enumerate(chats)}
        started = time.monotonic()
        await api.wait_for(lambda: all(c in api.first_reply for c in (chats[0], chats[-1])) and
                           len(first_reply(chats)) >= backlog, timeout=600)
        finished = max(first_reply(chats).values())
        per_second = backlog / (finished - started)

        # Latency at a steady offered rate.
        steady = range(2_000_000, 2_000_000 + int(rate * seconds))
        update_of = {}
        for chat in steady:
            update_of[chat] = api.text(questions[chat % len(questions)], uid=chat, lang=None)
            await asyncio.sleep(1 / rate)
        await api.wait_for(lambda: len(first_reply(steady)) >= len(steady), timeout=120)
        firsts = first_reply(steady)
        latencies = sorted((firsts[c] - api.served_at[update_of[c]]) * 1000 for c in steady)
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        transport.stop()
        await poller
        await transport.shutdown()
        await store.close()
    await api.stop()
    print(f"backlog of {backlog} questions: {per_second:.0f} updates/s answered")
    print(f"{rate:.0f} updates/s offered for {seconds:.0f} s: first reply p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"updates_per_s={per_second:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f}")
    return 0
