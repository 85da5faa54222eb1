"""`bildungslotse bench matrix`: messages answered through a real Synapse on loopback: throughput
for a burst, latency from send to reply one at a time, and the bot's own processing time."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import build_engine
from bot.bench import QUESTIONS
from bot.config import Config, MatrixSettings
from bot.service import Service
from bot.store import Pseudonyms, Store


async def run_matrix_bench(config: Config, catalogue_dir: Path, burst: int = 200, sequential: int = 50) -> int:
    from bot.loopback.synapse import Synapse, available

    if not available():
        print("bench matrix needs Synapse: pip install 'bildungslotse[test]'")
        return 2
    from nio import AsyncClient, RoomMessagesResponse, RoomMessageText

    from bot.transports.matrix import MatrixTransport

    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        synapse = Synapse(Path(tmp) / "synapse").start()
        try:
            bot_account, user_account = synapse.register("lotse"), synapse.register("bench")
            store = await Store.open(f"sqlite+aiosqlite:///{tmp}/bot.db", Pseudonyms(b"bench"))
            settings = MatrixSettings(homeserver=synapse.url, user_id=bot_account["user_id"], token=bot_account["access_token"])
            transport = MatrixTransport(settings, Service(build_engine(config, catalogue_dir), store, "matrix"), store, Path(tmp))
            await transport.start()
            runner = asyncio.create_task(transport.run())
            user = AsyncClient(synapse.url, user_account["user_id"])
            user.restore_login(user_account["user_id"], user_account["device_id"], user_account["access_token"])
            room = (await user.room_create(is_direct=True, invite=[bot_account["user_id"]])).room_id
            replies: list[float] = []

            async def on_text(_room, event) -> None:
                if event.sender == bot_account["user_id"]:
                    replies.append(time.monotonic())

            user.add_event_callback(on_text, RoomMessageText)
            await user.sync(timeout=0, full_state=True)

            async def until(count: int, limit: float = 300) -> None:
                deadline = time.monotonic() + limit
                while len(replies) < count and time.monotonic() < deadline:
                    await user.sync(timeout=200)

            await until(1)  # the greeting
            transport.handled, transport.busy_s = 0, 0.0
            started = time.monotonic()
            await asyncio.gather(*(user.room_send(room, "m.room.message", {"msgtype": "m.text", "body": questions[i % len(questions)]})
                                   for i in range(burst)))
            await until(1 + burst)
            per_second = burst / (replies[-1] - started)
            latencies = []
            for i in range(sequential):
                before = len(replies)
                sent = time.monotonic()
                await user.room_send(room, "m.room.message", {"msgtype": "m.text", "body": questions[i % len(questions)]})
                await until(before + 1, 30)
                latencies.append((replies[-1] - sent) * 1000)
            busy_ms = 1000 * transport.busy_s / max(1, transport.handled)
            page = await user.room_messages(room, start=user.next_batch, limit=1)
            assert isinstance(page, RoomMessagesResponse)
            transport.stop()
            await runner
            await transport.shutdown()
            await user.close()
            await store.close()
        finally:
            synapse.remove()
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"burst of {burst} messages: {per_second:.0f} answered/s through Synapse")
    print(f"{sequential} messages one at a time: send to reply p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"the bot's own work per message (engine + store, no network): {busy_ms:.2f} ms")
    print(f"messages_per_s={per_second:.0f} p50_ms={p50:.0f} p99_ms={p99:.0f} bot_ms_per_message={busy_ms:.2f}")
    return 0
