"""A process that writes through the store with a journal; the test kills it with SIGKILL.

Usage: python store_writer.py DB_URL JOURNAL COUNT [written]
Writes COUNT question events and a preference, waits until they are durable (or, with "written",
in the database), prints "durable" and how many changes wait, then waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.store import Pseudonyms, Store


async def main(url: str, journal: str, count: int, written: bool) -> None:
    store = await Store.open(url, Pseudonyms(b"worker-secret-worker-secret-0123"), journal=Path(journal),
                             connect_args={"timeout": 0.1})
    for n in range(count):
        store.record("question", "test", "de", "school", None, n % 2 == 0)
    await store.set_prefs(store.key("test", 1), language="uk")
    await (store.flush() if written else store.durable())
    print("durable", store.pending, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["written"]))
