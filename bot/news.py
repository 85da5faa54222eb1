"""Topic news for subscribers, through the store's outbox.

Each item of offers/<town>/news.yaml is fanned out once (on or after its date) into one outbox row
per subscriber; the sender then works through the outbox in order, marking each row right after
its message went out. A crash repeats at most the one message in flight and skips none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from bot.catalogue import Catalogue
from bot.catalogue.model import NewsItem
from bot.languages import is_rtl
from bot.reply import Message, Reply
from bot.store import OutboxItem, Store
from bot.text import bold, plain

log = logging.getLogger(__name__)
Send = Callable[[str, Reply], Awaitable[None]]  # (address, reply)


class PermanentSendError(Exception):
    """The message can never be delivered (the person blocked the bot, left the room)."""


def news_reply(item: NewsItem, lang: str) -> Reply:
    return Reply(lang, is_rtl(lang), (Message(((bold(f"📰 {item.title(lang)}"),), (plain(item.text(lang)),))),))


class RateLimit:
    """At most `per_second` starts per second, spaced evenly."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval


class Broadcaster:
    def __init__(self, store: Store, catalogue: Callable[[], Catalogue], senders: Mapping[str, Send],
                 per_second: float = 25.0) -> None:
        self.store = store
        self.catalogue = catalogue  # a callable, so a reloaded catalogue is seen
        self.senders = senders
        self.limit = RateLimit(per_second)

    async def enqueue_due(self) -> int:
        today = datetime.now(UTC).date()
        total = 0
        for item in self.catalogue().news:
            if item.date <= today:
                total += await self.store.enqueue_news(item.id, item.topic)
        return total

    async def deliver(self) -> int:
        """Send everything pending for our transports; returns how many were sent."""
        news = {item.id: item for item in self.catalogue().news}
        sent = 0
        while True:
            batch = await self.store.outbox_pending(100, transports=self.senders)
            if not batch:
                return sent
            for row in batch:
                await self.limit.wait()
                if await self._send(row, news.get(row.news_id)):
                    sent += 1
                await self.store.mark_sent(row.id)

    async def _send(self, row: OutboxItem, item: NewsItem | None) -> bool:
        if item is None or row.address is None:
            log.warning("news %s: nothing to send (item removed or address unreadable); skipped", row.news_id)
            return False
        try:
            await self.senders[row.transport](row.address, news_reply(item, row.language))
        except PermanentSendError as exc:
            log.info("news %s: not deliverable (%s); skipped", row.news_id, exc)
            return False
        return True

    async def run(self, every_s: float = 60.0) -> None:
        """Enqueue and deliver, now and then every minute; transient failures are retried."""
        while True:
            try:
                await self.enqueue_due()
                await self.deliver()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a network or database hiccup: try again later
                log.warning("news delivery paused (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(every_s)
