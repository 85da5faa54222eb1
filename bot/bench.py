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
    """`factor` copies of every offer, each copy with a keyword of its own, as distinct offers.
    Only the originals keep their example questions (a copy would add nothing to learn)."""
    offers = {}
    for copy in range(factor):
        for ident, offer in catalogue.offers.items():
            texts = {lang: replace(text, keywords=(*text.keywords, f"{ident}{copy}x"),
                                   examples=text.examples if copy == 0 else ())
                     for lang, text in offer.texts.items()}
            new_id = ident if copy == 0 else f"{ident}-{copy}"
            offers[new_id] = replace(offer, id=new_id, texts=MappingProxyType(texts))
    by_topic = {t: tuple(i for i, o in offers.items() if o.topic == t) for t in catalogue.topics}
    return replace(catalogue, offers=MappingProxyType(offers), by_topic=MappingProxyType(by_topic))


def _latencies(matcher: Matcher, questions: list[str], rounds: int) -> tuple[list[float], float]:
    """Milliseconds per question, one at a time as a chat would ask; and the fast-path share."""
    times, fast = [], 0
    for _ in range(rounds):
        for question in questions:
            start = time.perf_counter()
            result = matcher.match_many([question])[0]
            times.append((time.perf_counter() - start) * 1000)
            fast += result.fast
    return times, fast / max(1, len(times))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_bench(config: Config, catalogue_dir: Path, rounds: int = 5) -> int:
    import tempfile

    from bot.matching import load_stopwords

    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()]
    catalogue = load_catalogue(catalogue_dir)
    with tempfile.TemporaryDirectory() as empty:
        start = time.perf_counter()  # no trained ranker cached: what the first start costs
        Matcher(catalogue, load_stopwords(), cache_dir=Path(empty))
        train_s = time.perf_counter() - start
    build_matcher(catalogue, config)  # make sure the data folder's cache is filled
    start = time.perf_counter()
    matcher = build_matcher(catalogue, config)
    cached_s = time.perf_counter() - start
    _latencies(matcher, questions, 1)  # warm-up
    small, fast_share = _latencies(matcher, questions, rounds)
    big_catalogue = synthetic(catalogue, 100)
    start = time.perf_counter()
    big = large_matcher(big_catalogue, matcher)
    build_s = time.perf_counter() - start
    large, _ = _latencies(big, questions, max(1, rounds // 2))
    p50, p99 = statistics.median(small), _pct(small, 0.99)
    p50_big, p99_big = statistics.median(large), _pct(large, 0.99)
    encoder = matcher.encoder.name if matcher.full and matcher.encoder else "none"
    print(f"questions: {len(questions)} x {rounds} rounds, {len(catalogue.offers)} offers, encoder: {encoder}")
    print(f"catalogue load with training {train_s:.1f} s, with the trained ranker cached {cached_s:.1f} s")
    print(f"kassel catalogue: p50 {p50:.1f} ms, p99 {p99:.1f} ms per question; "
          f"{100 * fast_share:.0f}% answered without the encoder (cascade)")
    print(f"100x catalogue ({len(big_catalogue.offers)} offers, built in {build_s:.1f} s): "
          f"p50 {p50_big:.1f} ms, p99 {p99_big:.1f} ms")
    batch_s = _ask_thousand(questions)
    print(f"ask --json - with 1000 questions: {batch_s:.1f} s including start-up")
    rss_mb = _run_memory(config, catalogue_dir)
    if rss_mb:
        print(f"bildungslotse run (Telegram on a loopback Bot API server, one question answered): "
              f"peak resident memory {rss_mb:.0f} MB")
    print(f"p50_ms={p50:.1f} p99_ms={p99:.1f} fast_share={fast_share:.2f} p50_ms_100x={p50_big:.1f} "
          f"p99_ms_100x={p99_big:.1f} load_train_s={train_s:.1f} load_cached_s={cached_s:.1f} "
          f"ask_1000_s={batch_s:.1f} run_rss_mb={rss_mb or 0:.0f}")
    return 0


def _ask_thousand(questions: list[str]) -> float:
    """`bildungslotse ask --json -` on 1000 questions, start-up included, as the evaluation runs it."""
    import subprocess
    import sys

    lines = "".join(f"{questions[i % len(questions)]} ({i})\n" for i in range(1000))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot", "ask", "--json", "-"], input=lines, capture_output=True,
                   text=True, check=True)
    return time.perf_counter() - start


def _run_memory(config: Config, catalogue_dir: Path) -> float | None:
    """Peak resident memory of `bildungslotse run` once it answered a question (Linux only; the
    loopback Bot API server comes with the test extras)."""
    import asyncio

    try:
        from bot.loopback.telegram_api import FakeBotApi
    except ImportError:
        return None
    return asyncio.run(_measure_run(FakeBotApi, catalogue_dir, config.ranker_cache.resolve()))


async def _measure_run(api_class, catalogue_dir: Path, cache: Path) -> float | None:
    import asyncio
    import os
    import sys
    import tempfile

    api = await api_class().start()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(f"data_dir: {tmp}/data\ntelegram: {{base_url: '{api.base_url}'}}\n", encoding="utf-8")
        # The trained ranker of the bench (a first start would train, and measure training).
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "BILDUNGSLOTSE_SECRET": "b" * 32,
               "BILDUNGSLOTSE_CACHE_DIR": str(cache)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config), "--catalogue", str(catalogue_dir),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            api.text("Wo finde ich einen Deutschkurs?")
            await api.wait_for(lambda: api.sent(), timeout=300)
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            return peak / 1024
        except (OSError, StopIteration, TimeoutError):
            return None
        finally:
            process.terminate()
            await process.wait()
            await api.stop()


def large_matcher(catalogue: Catalogue, trained: Matcher) -> Matcher:
    """A matcher for a synthetic catalogue of thousands of offers, for latency only: training
    one would take an hour, so it reuses the fitted fusion of `trained` and a classifier whose
    weights are the originals' repeated for every copy (the same size, so the same cost)."""
    import copy

    from bot.matching import load_stopwords
    from bot.matching.classifier import NONE
    from bot.matching.training import TOPIC_CLASS

    def copies(labels: tuple[str, ...]) -> tuple[list[str], list[int]]:
        """The new catalogue's classes, and for each the class of ours it copies."""
        rows = {label: i for i, label in enumerate(labels)}
        new_labels = [*catalogue.offers, NONE, *(label for label in labels if label.startswith(TOPIC_CLASS))]
        return new_labels, [rows.get(label if label in rows else label.rsplit("-", 1)[0], rows[NONE])
                            for label in new_labels]

    models = copy.copy(trained.models)
    models.classifier = trained.models.classifier.repeated(*copies(trained.models.classifier.labels))
    if trained.models.probe is not None:
        models.probe = trained.models.probe.repeated(*copies(trained.models.probe.labels))
    originals = {ident: i for i, ident in enumerate(trained.catalogue.offers)}
    models.usual = trained.models.usual[[originals.get(o, originals.get(o.rsplit("-", 1)[0], 0))
                                         for o in catalogue.offers]]
    return Matcher(catalogue, load_stopwords(), encoder=trained.encoder, models=models)


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
    from bot.catalogue.loader import _offer_files

    files = _offer_files(target)
    originals = {p: yaml.safe_load(p.read_text(encoding="utf-8"))["offers"] for p in files}
    base = sum(len(v) for v in originals.values())
    copies = max(1, offers // base)
    for path, items in originals.items():
        # Copies without the example questions: one question taught for two offers is refused.
        grown = [dict(item, id=f"{item['id']}-{n}") if n else item for n in range(copies) for item in items]
        for item in grown[len(items):]:
            item.pop("examples", None)
        path.write_text(yaml.dump({"offers": grown}, Dumper=Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for lang_file in (target / "lang").glob("*.yaml"):
        data = yaml.safe_load(lang_file.read_text(encoding="utf-8"))
        data["offers"] = {f"{ident}-{n}" if n else ident: ({k: v for k, v in text.items() if k != "examples"} if n else text)
                          for n in range(copies) for ident, text in data["offers"].items()}
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
