from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from bot.catalogue.model import NewsItem
from bot.news import Broadcaster, PermanentSendError, RateLimit
from bot.store import Pseudonyms, Store

WORKER = Path(__file__).with_name("workers") / "broadcast.py"
ROOT = Path(__file__).resolve().parents[1]


def run_worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_sigkill_in_the_middle_of_a_broadcast_loses_nobody(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    out = tmp_path / "sent.txt"
    assert run_worker(url, str(out), "setup", "500").wait(60) == 0
    worker = run_worker(url, str(out))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 150:
            break
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    before = len(out.read_text().splitlines())
    assert 150 <= before < 500, "the kill should land in the middle of the broadcast"
    assert run_worker(url, str(out)).wait(120) == 0  # the restarted bot resumes
    counts = Counter(out.read_text().splitlines())
    assert set(counts) == {f"user-{n}" for n in range(500)}
    assert sum(n - 1 for n in counts.values()) <= 1


async def test_news_goes_out_once_in_each_language(tmp_path, catalogue):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"s"))
    for n, lang in enumerate(["ar", "tr", "pl"]):
        key = store.key("telegram", n)
        await store.set_prefs(key, language=lang)
        await store.subscribe(key, "school", "telegram", str(n))
    await store.subscribe(store.key("telegram", 9), "daycare", "telegram", "9")
    item = NewsItem("n1", "school", date(2026, 1, 1), {"de": "Titel", "ar": "عنوان"}, {"de": "Text", "ar": "نص"}, "https://x.org")
    cat = replace(catalogue, news=(item,))
    got: list[tuple[str, str, str]] = []

    async def send(address, reply):
        got.append((address, reply.language, reply.plain()))

    broadcaster = Broadcaster(store, lambda: cat, {"telegram": send}, per_second=1000)
    for _ in range(2):
        await broadcaster.enqueue_due()
        await broadcaster.deliver()
    assert sorted(a for a, _, _ in got) == ["0", "1", "2"]
    texts = {a: text for a, _, text in got}
    assert "عنوان" in texts["0"] and "Titel" in texts["1"]  # Turkish falls back to German here
    await store.close()


async def test_undeliverable_messages_are_skipped_not_retried_forever(tmp_path, catalogue):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db", Pseudonyms(b"s"))
    for n in range(3):
        await store.subscribe(store.key("telegram", n), "school", "telegram", str(n))
    item = NewsItem("n2", "school", date(2026, 1, 1), {"de": "T"}, {"de": "X"}, "https://x.org")
    sent = []

    async def send(address, reply):
        if address == "1":
            raise PermanentSendError("blocked")
        sent.append(address)

    broadcaster = Broadcaster(store, lambda: replace(catalogue, news=(item,)), {"telegram": send}, per_second=1000)
    await broadcaster.enqueue_due()
    assert await broadcaster.deliver() == 2 and sent == ["0", "2"]
    assert await store.outbox_pending() == []
    await store.close()


async def test_rate_limit_spaces_messages():
    limit = RateLimit(25)
    started = time.monotonic()
    for _ in range(26):
        await limit.wait()
    assert time.monotonic() - started >= 0.99  # 26 starts take at least a second at 25/s


def test_news_file_is_validated(catalogue_copy):
    from bot.catalogue import validate

    (catalogue_copy / "news.yaml").write_text(
        "news:\n  - id: x\n    topic: schools\n    date: 2026-02-30\n    title: {de: T}\n    text: {en: only}\n",
        encoding="utf-8")
    problems = "\n".join(validate(catalogue_copy))
    assert "unknown topic 'schools'" in problems and "bad date '2026-02-30'" in problems
    assert "'text' must map languages to text, with 'de' at least" in problems
    assert "missing 'source'" in problems


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
