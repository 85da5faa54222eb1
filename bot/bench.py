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
    matcher = build_matcher(catalogue, config)
    _latencies(matcher, questions, 1)  # warm-up
    small = _latencies(matcher, questions, rounds)
    big_catalogue = synthetic(catalogue, 100)
    start = time.perf_counter()
    big = build_matcher(big_catalogue, config)
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


def synthetic_folder(source: Path, target: Path, offers: int) -> int:
    """A catalogue folder with about `offers` offers: every offer copied under new ids, with its
    translations, as an editor's files would look. Returns the number of offers written."""
    import shutil

    import yaml

    class Dumper(yaml.SafeDumper):
        """Every copy written out: the catalogue refuses YAML aliases, which PyYAML would emit for
        the lists the copies share."""

        def ignore_aliases(self, data: object) -> bool:
            return True

    shutil.copytree(source, target)
    files = [p for p in target.glob("*.yaml") if p.name not in ("catalogue.yaml", "offices.yaml", "topics.yaml", "news.yaml")]
    originals = {p: yaml.safe_load(p.read_text(encoding="utf-8"))["offers"] for p in files}
    base = sum(len(v) for v in originals.values())
    copies = max(1, offers // base)
    for path, items in originals.items():
        grown = [dict(item, id=f"{item['id']}-{n}" if n else item["id"]) for n in range(copies) for item in items]
        path.write_text(yaml.dump({"offers": grown}, Dumper=Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for lang_file in (target / "lang").glob("*.yaml"):
        data = yaml.safe_load(lang_file.read_text(encoding="utf-8"))
        data["offers"] = {f"{ident}-{n}" if n else ident: text for n in range(copies)
                          for ident, text in data["offers"].items()}
        lang_file.write_text(yaml.dump(data, Dumper=Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return base * copies


def run_validate_bench(catalogue_dir: Path, offers: int = 5000, rounds: int = 3) -> int:
    import tempfile

    from bot.catalogue import validate

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "synthetic"
        count = synthetic_folder(catalogue_dir, folder, offers)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            problems = validate(folder)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"validate on a synthetic catalogue of {count} offers in 10 languages: median {median:.2f} s "
          f"over {rounds} runs, {len(problems)} problems")
    print(f"offers={count} validate_s={median:.2f} problems={len(problems)}")
    return 0 if not problems else 1
