"""The `bildungslotse` command."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.catalogue import CatalogueError, validate
from bot.config import MATRIX_TOKEN_ENV, TELEGRAM_TOKEN_ENV, Config, ConfigError, load_config
from bot.languages import LANGUAGES
from bot.store import SecretError, StoreError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bildungslotse",
        description="Guides newcomers in Kassel to education offers, in their language. "
                    "Without a command: the bots configured, or a terminal chat when none is.",
    )
    parser.add_argument("--config", help="settings file (default: $BILDUNGSLOTSE_CONFIG or built-in defaults)")
    parser.add_argument("--catalogue", help="catalogue folder (default: the embedded Kassel catalogue)")
    parser.add_argument("--municipality", help="which configured municipality (default: the first in the config)")
    # The same options after the command (`bildungslotse run --config FILE`); SUPPRESS keeps a
    # value given before the command when none is given after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--catalogue", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--municipality", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", parser_class=_subparser(common))
    sub.add_parser("chat", help="chat in the terminal")
    sub.add_parser("run", help="start the configured Telegram and Matrix bots")
    ask = sub.add_parser("ask", help="answer questions; '-' reads one question per line from stdin")
    ask.add_argument("question", nargs="+", help="the question, or - for stdin")
    ask.add_argument("--lang", choices=LANGUAGES, help="answer in this language")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--explain", action="store_true", help="which catalogue words voted for which topic and offer")
    check = sub.add_parser("validate", help="check a catalogue; exit 1 and list problems if invalid")
    check.add_argument("path", nargs="?", help="catalogue folder (default: the embedded one)")
    link = sub.add_parser("link", help="the Telegram deep link and the Matrix link for a multiplier")
    link.add_argument("--lang", required=True, help="language the bot opens in")
    link.add_argument("--topic", help="topic the bot opens with")
    link.add_argument("--offer", help="an offer to open directly (instead of a topic)")
    link.add_argument("--district", help="district to prefer (e.g. Nord-Holland)")
    poster = sub.add_parser("poster", help="a printable A4 poster with the QR code of the link")
    poster.add_argument("--lang", help="language of the poster")
    poster.add_argument("--topic", help="topic the link opens with")
    poster.add_argument("--district", help="district to prefer")
    poster.add_argument("--all-languages", action="store_true", help="one poster per language")
    poster.add_argument("-o", "--output", required=True, help="poster.svg, poster.pdf or poster.png")
    show = sub.add_parser("preview", help="what the bot sends for an offer, in the terminal")
    show.add_argument("offer", help="the offer id")
    show.add_argument("--lang", default="de", choices=LANGUAGES)
    show.add_argument("--all-languages", action="store_true", help="every language, one after another")
    done = sub.add_parser("mark-translated", help="record that translations follow the current German text")
    done.add_argument("--lang", required=True, choices=LANGUAGES)
    done.add_argument("ids", nargs="+", help="offer or office ids")
    old_ = sub.add_parser("stale", help="offices and offers not verified for a while, the most used first")
    old_.add_argument("--months", type=int, default=12)
    embed = sub.add_parser("embed", help="compute the sentence embeddings of a catalogue's questions and texts and "
                                          "fit the ranker's fusion anew; write both into its folder (shipped, so that "
                                          "no installation must)")
    embed.add_argument("path", nargs="?", help="catalogue folder (default: the embedded one)")
    cover = sub.add_parser("coverage", help="which texts exist in which language (missing, draft, reviewed)")
    cover.add_argument("path", nargs="?", help="catalogue folder (default: the embedded one)")
    stats = sub.add_parser("stats", help="questions, answers, feedback and link use per week, topic and language")
    stats.add_argument("--weeks", type=int, default=12, help="how many weeks back (default 12)")
    stats.add_argument("--csv", action="store_true", help="print CSV for spreadsheets")
    stats.add_argument("--png", metavar="FILE", help="also draw the figures as a chart")
    bench = sub.add_parser("bench", help="measure speed: matching, or 'store' for question round trips with the store")
    bench.add_argument("what", nargs="?",
                       choices=["matching", "store", "telegram", "matrix", "validate", "replicas", "web"],
                       default="matching")
    bench.add_argument("--rounds", type=int, default=5, help="passes over the questions (default 5)")
    bench.add_argument("--users", type=int, default=1000, help="concurrent simulated users (bench store)")
    bench.add_argument("--updates", type=int, default=1000, help="updates posted per replica count (bench replicas)")
    from bot.web.serve import add_commands

    add_commands(sub)  # web, editors: the editors' workbench
    return parser


def _subparser(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    class Sub(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, parents=[common], **kwargs)

    return Sub


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx", "telegram.ext.Application", "nio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if os.environ.get("BILDUNGSLOTSE_DEBUG"):  # our own modules only; never message texts
        logging.getLogger("bot").setLevel(logging.DEBUG)
    try:
        config = load_config(args.config)
        if args.municipality or args.command not in ("run", None):  # `run` serves every configured one
            config = config.city(args.municipality)
    except ConfigError as exc:
        print(f"bildungslotse: {exc}", file=sys.stderr)
        return 2
    catalogue = Path(args.catalogue) if args.catalogue else config.catalogue
    try:
        if args.command == "validate":
            return _validate(Path(args.path) if args.path else catalogue)
        if args.command in ("link", "preview", "stale", "poster", "mark-translated"):
            return _editors(config, catalogue, args)
        if args.command == "embed":
            return _embed(config, Path(args.path) if args.path else catalogue)
        if args.command == "coverage":
            from bot.catalogue.coverage import measure, report

            print(report(measure(Path(args.path) if args.path else catalogue)))
            return 0
        if args.command in ("web", "editors"):
            from bot.web.serve import run_command

            return run_command(config, catalogue, args)
        if args.command == "bench" and args.what == "web":
            from bot.web.bench import run_web_bench

            return asyncio.run(run_web_bench(config, catalogue))
        if args.command == "bench" and args.what == "validate":
            from bot.bench import run_validate_bench

            return run_validate_bench(catalogue)
        if args.command == "bench" and args.what == "matrix":
            from bot.bench_matrix import run_matrix_bench

            return asyncio.run(run_matrix_bench(config, catalogue))
        if args.command == "bench" and args.what == "replicas":
            from bot.bench_replicas import run_replicas_bench

            return asyncio.run(run_replicas_bench(config, catalogue, updates=max(10, args.updates)))
        if args.command == "bench" and args.what == "telegram":
            from bot.bench_telegram import run_telegram_bench

            return asyncio.run(run_telegram_bench(config, catalogue))
        if args.command == "bench" and args.what == "store":
            from bot.bench_store import run_store_bench

            return asyncio.run(run_store_bench(config, catalogue, users=max(1, args.users)))
        if args.command == "bench":
            from bot.bench import run_bench

            return run_bench(config, catalogue, rounds=max(1, args.rounds))
        if args.command == "stats":
            return asyncio.run(_stats(config, catalogue, args))
        if args.command == "run":
            return _run(config, catalogue)
        from bot.app import build_engine

        engine = build_engine(config, catalogue)
        if args.command == "ask":
            return _ask(engine, args)
        if args.command is None and any(city.platforms for city in config.cities()):
            return _run(config, catalogue)
        return asyncio.run(_chat(config, engine))
    except CatalogueError as exc:
        print(f"bildungslotse: the catalogue is not valid ({len(exc.problems)} problems):", file=sys.stderr)
        for problem in exc.problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        print("Fix them, then check with: bildungslotse validate", file=sys.stderr)
        return 1
    except (StoreError, SecretError) as exc:
        print(f"bildungslotse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except (SQLAlchemyError, OSError) as exc:  # a command that reads the store, e.g. stats, stale
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        print(f"bildungslotse: the database does not answer ({reason}); check DATABASE_URL or data_dir",
              file=sys.stderr)
        return 2


def _validate(path: Path) -> int:
    problems = validate(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    return 0


def _embed(config: Config, folder: Path) -> int:
    from bot.catalogue import load_catalogue
    from bot.matching import Matcher, load_stopwords

    matcher = Matcher(load_catalogue(folder), load_stopwords(), cache_dir=config.ranker_cache, keep_embeddings=True,
                      fresh=True)
    if matcher.encoder is None:
        print("bildungslotse: the sentence encoder is not available; nothing written", file=sys.stderr)
        return 2
    for written in matcher.ship():
        print(f"{written}: {written.stat().st_size // 1024} KB")
    return 0


def _run(config: Config, catalogue: Path) -> int:
    if not any(city.platforms for city in config.cities()):
        print(f"bildungslotse: no platform is configured. Set {TELEGRAM_TOKEN_ENV} for Telegram, or "
              f"{MATRIX_TOKEN_ENV} and matrix.homeserver in the config for Matrix. "
              "Without them, 'bildungslotse chat' runs the bot in this terminal.", file=sys.stderr)
        return 2
    from bot.runner import run_bots

    code = asyncio.run(run_bots(config, catalogue))
    _exit_despite_stray_threads(code)
    return code


def _exit_despite_stray_threads(code: int, grace_s: float = 5.0) -> None:
    """A database driver thread left waiting (aiosqlite's, when a connection was never returned)
    would keep the process alive after a stop: give such threads a moment, then exit anyway."""
    import threading
    import time

    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        logging.getLogger("bot").warning("a worker thread did not stop; exiting anyway")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _ask(engine, args: argparse.Namespace) -> int:
    from bot.engine import clean
    from bot.reply import Incoming

    def answer(question: str, index: int) -> str:
        reply = engine.handle(Incoming(user=f"ask-{index}", text=question, chosen_language=args.lang))
        if not args.json:
            return reply.plain()
        return json.dumps({
            "question": question,
            "language": reply.language,
            "category": reply.category,
            "matches": [{"offer": m.offer, "category": m.topic, "score": m.score} for m in reply.matches[:5]],
            "reply": reply.plain(),
        }, ensure_ascii=False)

    stdin = args.question == ["-"]
    if stdin:
        _tolerant_stdin()
    if args.explain:  # each line from stdin, as for the answers, or the words given; as the engine sees them
        lines = sys.stdin if stdin else [" ".join(args.question)]
        questions = [q for q in map(clean, lines) if q]
        print("\n\n".join(_explanation(engine.matcher.explain(q, args.lang), engine.catalogue) for q in questions))
        return 0
    if stdin:
        # In batches, so the sentence encoder embeds the questions that need it together.
        index = 0
        for batch in _batches(sys.stdin, BATCH):
            engine.matcher.match_many([clean(q) for q in batch], args.lang)
            for question in batch:
                print(answer(question, index), flush=True)
                index += 1
        return 0
    print(answer(" ".join(args.question), 0))
    return 0


BATCH = 64


def _batches(lines, size: int):
    """Lines as they come, grouped: whatever has arrived (up to `size`) goes together, so a
    pipe of a thousand questions is embedded in batches while a person or program sending one
    line at a time still gets each answer at once."""
    import queue
    import threading

    waiting: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in lines:
            waiting.put(line)
        waiting.put(None)

    threading.Thread(target=read, daemon=True, name="stdin").start()
    while True:
        first = waiting.get()
        if first is None:
            return
        batch = [first]
        while len(batch) < size:
            try:
                line = waiting.get_nowait()
            except queue.Empty:
                break
            if line is None:
                yield [b.rstrip("\n") for b in batch]
                return
            batch.append(line)
        yield [b.rstrip("\n") for b in batch]


def _explanation(found: dict, catalogue) -> str:
    """What each signal thought, and what the fusion made of it, for an editor."""
    result = found["result"]
    out = [f"language: {result.language} (confidence {result.detection.confidence:.2f})",
           f"ages stated: {', '.join(f'{a:g}' for a in result.people.ages) or '-'}; "
           f"a child named: {result.people.child}; another adult named: {result.people.other_adult}",
           f"stage: {'fast (keywords, classifier)' if result.fast else 'full (with the sentence encoder)'}"]
    for name, ranked in found["signals"].items():
        out.append(f"{name}: " + ", ".join(f"{offer} {score:g}" if offer else f"{score:g}" for offer, score in ranked))
    out.append("fused: " + ", ".join(f"{m.offer} {m.score:g}" for m in result.matches[:4]))
    verdict = "answers with the first" if result.fits else "says nothing fits"
    out.append(f"decision: {verdict} (bar {found['threshold']:.2f})")
    words = sorted(found["words"].items(), key=lambda kv: -sum(v for _, v in kv[1]))[:6]
    for (kind, ident), voted in words:
        label = "topic" if kind == "t" else "offer"
        out.append(f"  keywords for {label} {ident}: " + ", ".join(f"{w} {v:.2f}" for w, v in voted[:6]))
    for scorer, weights in found["weights"].items():
        out.append(f"weights of the {scorer} scorer: " + ", ".join(f"{k} {v:+.2f}" for k, v in weights.items()))
    return "\n".join(out)


def _tolerant_stdin() -> None:
    """A byte that is not UTF-8 becomes U+FFFD, not the end of the command."""
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")


async def _chat(config: Config, engine) -> int:
    from bot.app import open_store, purge_periodically
    from bot.service import Service
    from bot.transports.console import run_chat

    _tolerant_stdin()
    store = await open_store(config)
    purge = asyncio.create_task(purge_periodically(store))
    try:
        return await run_chat(Service(engine, store, "terminal"))
    finally:
        purge.cancel()
        await store.close()


async def _stats(config: Config, catalogue: Path, args: argparse.Namespace) -> int:
    from bot.app import build_engine, open_store
    from bot.stats import collect, render_csv, render_png, render_table

    matcher = build_engine(config, catalogue).matcher
    store = await open_store(config, journal=False)
    cases = []
    try:
        figures = await collect(store, weeks=max(1, args.weeks), matcher=matcher)
        if config.handover.room:  # the counsellor handover's figures (bot/handover)
            from bot.handover.cases import CaseStore

            cases = await CaseStore(store).all_cases()
    finally:
        await store.close()
    print(render_csv(figures) if args.csv else render_table(figures), end="" if args.csv else "\n")
    if config.handover.room and not args.csv:
        from bot.handover.figures import render

        print("\n" + render(cases))
    if args.png:
        render_png(figures, Path(args.png))
        print(f"chart written to {args.png}", file=sys.stderr)
    return 0


def _editors(config: Config, catalogue_dir: Path, args: argparse.Namespace) -> int:
    from bot import editors
    from bot.app import build_engine

    engine = build_engine(config, catalogue_dir)
    catalogue = engine.catalogue
    if args.command == "link":
        return editors.print_link(config, catalogue, args.lang, args.topic, args.offer, args.district)
    if args.command == "preview":
        if args.offer not in catalogue.offers:
            print(f"bildungslotse: unknown offer '{args.offer}'", file=sys.stderr)
            return 2
        print(editors.preview(engine, args.offer, list(catalogue.languages) if args.all_languages else [args.lang]))
        return 0
    if args.command == "stale":
        print(asyncio.run(editors.stale(catalogue, config, max(1, args.months))))
        return 0
    if args.command == "mark-translated":
        return editors.mark_translated(catalogue_dir, catalogue, args.lang, args.ids)
    from bot.poster import make_posters

    return make_posters(config, catalogue, args)
