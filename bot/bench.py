"""`bildungslotse bench`: matching latency on the Kassel catalogue and on one 100 times larger.

Figures, not assertions: the machine is shared, so it prints medians over several rounds.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from bot.app import build_matcher
from bot.catalogue import Catalogue, load_catalogue
from bot.config import Config
from bot.matching import Matcher

QUESTIONS = Path(__file__).with_name("bench_questions.txt")


def synthetic(catalogue: Catalogue, factor: int) -> Catalogue:
    """`factor` copies of every offer, each copy with a keyword of its own, as distinct offers."""
    offers = {}
    for copy in range(factor):
        for ident, offer in catalogue.offers.items():
            texts = {lang: replace(text, keywords=(*text.keywords, f"{ident}{copy}x"))
                     for lang, text in offer.texts.items()}
            new_id = ident if copy == 0 else f"{ident}-{copy}"
            offers[new_id] = replace(offer, id=new_id, texts=MappingProxyType(texts))
    by_topic = {t: tuple(i for i, o in offers.items() if o.topic == t) for t in catalogue.topics}
    return replace(catalogue, offers=MappingProxyType(offers), by_topic=MappingProxyType(by_topic))


def _latencies(matcher: Matcher, questions: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            matcher.match(question)
            times.append((time.perf_counter() - start) * 1000)
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_bench(config: Config, catalogue_dir: Path, rounds: int = 5) -> int:
    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()]
    catalogue = load_catalogue(catalogue_dir)
    matcher = build_matcher(catalogue, config.match_threshold)
    _latencies(matcher, questions, 1)  # warm-up
    small = _latencies(matcher, questions, rounds)
    big_catalogue = synthetic(catalogue, 100)
    start = time.perf_counter()
    big = build_matcher(big_catalogue, config.match_threshold)
    build_s = time.perf_counter() - start
    large = _latencies(big, questions, max(1, rounds // 2))
    p50, p99 = statistics.median(small), _pct(small, 0.99)
    p50_big, p99_big = statistics.median(large), _pct(large, 0.99)
    qps = len(small) / (sum(small) / 1000)
    print(f"questions: {len(questions)} x {rounds} rounds, {len(catalogue.offers)} offers")
    print(f"kassel catalogue: p50 {p50:.3f} ms, p99 {p99:.3f} ms per question, {qps:.0f} questions/s")
    print(f"100x catalogue ({len(big_catalogue.offers)} offers, built in {build_s:.2f} s): "
          f"p50 {p50_big:.3f} ms, p99 {p99_big:.3f} ms")
    print(f"p50_ms={p50:.3f} p99_ms={p99:.3f} p50_ms_100x={p50_big:.3f} p99_ms_100x={p99_big:.3f} qps={qps:.0f}")
    return 0
