"""Several replicas of `bildungslotse run` on one PostgreSQL (and one Redis).

- Each Telegram update is answered by one replica: it is claimed in the store with a lease before
  it is answered (bot/store/store.py `claim`), so a replica that dies while answering leaves it to
  the next delivery once the lease ran out.
- The leader jobs of a city (news broadcaster, retention purge, catalogue watcher, Matrix sync)
  run in the one replica that holds the city's lease; it renews the lease every third of its
  length, and when it dies another replica takes the lease over once it ran out.
- Telegram's per-bot send limit is counted in Redis, for all replicas together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.store import Store

log = logging.getLogger(__name__)


def replica_id() -> str:
    """This process among the replicas: host, pid and a random tail (a restarted pid is another replica)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class Leadership:
    """Runs a job only while this replica holds the lease `name`; another replica takes over
    within `ttl_s` (plus a third of it) of this one dying."""

    def __init__(self, store: Store, holder: str, ttl_s: float = 15.0) -> None:
        self.store, self.holder, self.ttl_s = store, holder, ttl_s
        self.leading: set[str] = set()

    async def run(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        task: asyncio.Task | None = None
        try:
            while True:
                try:
                    held = await asyncio.wait_for(self.store.hold_lease(name, self.holder, self.ttl_s), self.ttl_s / 3)
                except Exception as exc:  # noqa: BLE001 - cannot renew: stop leading, another may take over
                    log.warning("lease %s: cannot renew (%s: %s)", name, type(exc).__name__, exc)
                    held = False
                if held and task is None:
                    log.info("lease %s: this replica (%s) leads now", name, self.holder)
                    self.leading.add(name)
                    task = asyncio.create_task(_logged(name, job), name=f"leader:{name}")
                elif not held and task is not None:
                    log.warning("lease %s: lost; the job stops here", name)
                    self.leading.discard(name)
                    task.cancel()
                    task = None
                await asyncio.sleep(self.ttl_s / 3)
        finally:
            self.leading.discard(name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):  # a graceful stop hands over at once
                await asyncio.wait_for(asyncio.shield(self.store.drop_lease(name, self.holder)), 5)


async def _logged(name: str, job: Callable[[], Awaitable[Any]]) -> None:
    try:
        await job()
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the lease stays; the jobs inside restart themselves or are logged
        log.exception("leader job %s failed", name)


# Methods that send something to a chat: these count against Telegram's per-bot limit.
LIMITED = frozenset({"sendMessage", "sendVenue", "sendLocation", "sendPhoto", "sendDocument", "editMessageText",
                     "copyMessage", "forwardMessage", "sendMediaGroup"})


class SharedRateLimiter(BaseRateLimiter[int]):
    """At most `per_second` sends per second for one bot, counted in Redis across all replicas
    (fixed one-second windows on the replicas' clocks); a 429 pauses every replica for its
    retry_after. Reading Redis failing never stops a reply: it is logged and the send goes out."""

    def __init__(self, redis_url: str, bot: str, per_second: float = 30.0, max_retries: int = 5) -> None:
        self.redis_url, self.bot, self.per_second, self.max_retries = redis_url, bot, per_second, max_retries
        self.redis: Any = None
        self._warned = 0.0

    async def initialize(self) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)

    async def shutdown(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def slot(self) -> None:
        """Wait for a place in the current second's window of this bot."""
        pause_key = f"bildungslotse:{self.bot}:pause"
        while True:
            try:
                pause_ms = await self.redis.pttl(pause_key)
                if pause_ms and pause_ms > 0:
                    await asyncio.sleep(pause_ms / 1000)
                    continue
                now = time.time()
                window = int(now)
                key = f"bildungslotse:{self.bot}:sent:{window}"
                async with self.redis.pipeline(transaction=True) as pipe:
                    count, _ = await pipe.incr(key).expire(key, 5).execute()
            except Exception as exc:  # noqa: BLE001 - Redis away: send anyway, say so now and then
                if time.monotonic() - self._warned > 60:
                    self._warned = time.monotonic()
                    log.warning("send limit: Redis does not answer (%s); sending without the shared limit", exc)
                return
            now = time.time()
            if count <= self.per_second and int(now) == window:
                return
            # full, or the place came back from Redis after its second ended: a send now would
            # count against the next second without being counted there, so ask again
            await asyncio.sleep(max(0.0, window + 1 - now))

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        for attempt in range(self.max_retries + 1):
            if endpoint in LIMITED:
                await self.slot()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self.max_retries:
                    raise
                wait = exc.retry_after
                seconds = float(wait if isinstance(wait, int | float) else wait.total_seconds())
                with contextlib.suppress(Exception):
                    await self.redis.set(f"bildungslotse:{self.bot}:pause", 1, px=max(1, int(seconds * 1000)))
                await asyncio.sleep(seconds)
        raise AssertionError("unreachable")
