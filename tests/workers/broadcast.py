"""A bot process that only delivers news, to a file: the test kills it with SIGKILL mid-way.

Usage: python broadcast.py DB_URL OUT_FILE [setup N]
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from datetime import date

from bot.catalogue import DEFAULT_CATALOGUE, load_catalogue
from bot.catalogue.model import NewsItem
from bot.news import Broadcaster
from bot.store import Pseudonyms, Store

ITEM = NewsItem("test-news", "daycare", date(2026, 1, 1), {"de": "Neu"}, {"de": "Ein Test."}, "https://example.org")


async def main(url: str, out: str, setup: int) -> None:
    store = await Store.open(url, Pseudonyms(b"worker"))
    if setup:
        for n in range(setup):
            key = store.key("test", n)
            await store.set_prefs(key, language="de")
            await store.subscribe(key, "daycare", "test", f"user-{n}")
        await store.close()
        return
    catalogue = replace(load_catalogue(DEFAULT_CATALOGUE), news=(ITEM,))

    async def send(address: str, reply) -> None:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(address + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    broadcaster = Broadcaster(store, lambda: catalogue, {"test": send}, per_second=200)
    await broadcaster.enqueue_due()
    await broadcaster.deliver()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 else 0))
