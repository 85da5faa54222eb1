"""`bildungslotse bench web`: how long a workbench edit takes to reach the bot's answers, and how
fast the workbench's pages render on the Kassel catalogue grown 100 times. Figures, never
assertions; the last line is key=value."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from bot.config import Config

PASSWORD = "bench-password-1"


@contextlib.asynccontextmanager
async def _client(bench):
    """A signed-in client of the workbench app, in this process (HTTP without the sockets)."""
    import httpx

    from bot.web import accounts
    from bot.web.app import WebApp

    await accounts.add_account(bench.db, "bench", "admin", PASSWORD)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=WebApp(bench).app()), base_url="https://bench") as http:
        login = await http.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        await http.post("/login", data={"csrf": csrf, "name": "bench", "password": PASSWORD})
        yield http


def _form(page: str) -> dict[str, str]:
    import html
    import re

    found = {m[1]: html.unescape(m[2]) for m in re.finditer(r'<input id="f-[^"]+" name="([^"]+)" value="([^"]*)"', page)}
    found |= {m[1]: html.unescape(m[2])
              for m in re.finditer(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S)}
    for key in ("csrf", "base"):
        found[key] = page.split(f'name="{key}" value="')[1].split('"')[0]
    return found


async def _edit_latency(config: Config, catalogue_dir: Path, tmp: Path,
                        edits: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds from sending the form until the bot's card shows the new title; until the ranker,
    retrained in the background, serves as well; and until a bot in another process (another
    engine, its own catalogue watcher) shows it."""
    import shutil

    from bot.app import build_engine
    from bot.catalogue import load_catalogue
    from bot.engine import Engine
    from bot.reply import Incoming
    from bot.runner import Runtime
    from bot.store import Pseudonyms, Store, sqlite_url
    from bot.web.workbench import Workbench

    folder = tmp / "kassel"
    shutil.copytree(catalogue_dir, folder)
    engine = build_engine(config, folder)
    store = await Store.open(sqlite_url(tmp / "data"), Pseudonyms(b"b" * 32))
    runtime = Runtime(config, folder, engine, store)
    bench = Workbench(folder, engine, store, reload=runtime.reload)
    ident = next(iter(engine.catalogue.offers))
    answers: list[float] = []
    retrained: list[float] = []
    elsewhere: list[float] = []
    async with _client(bench) as http:
        for n in range(edits):
            title = f"{engine.catalogue.offers[ident].texts['de'].title.split(' (')[0]} ({n + 1})"
            form = _form((await http.get(f"/edit/offer/{ident}/de")).text) | {"title": title}
            start = time.perf_counter()
            await http.post(f"/edit/offer/{ident}/de", data=form)
            while title not in engine.handle(Incoming(user="bench", payload=f"o:{ident}:card")).plain():
                await asyncio.sleep(0.01)
            answers.append(time.perf_counter() - start)
            if bench._retrain is not None:
                await bench._retrain  # the next edit does not race a retraining
            retrained.append(time.perf_counter() - start)
        # A bot in another process: the workbench only writes; that bot's watcher notices the files.
        bench.reload = None
        other = Engine(load_catalogue(folder), engine.matcher)
        watcher = asyncio.create_task(Runtime(config, folder, other, store).watch())
        await asyncio.sleep(0.5)
        for n in range(max(1, edits // 2)):
            title = f"{other.catalogue.offers[ident].texts['de'].title.split(' (')[0]} (B{n + 1})"
            form = _form((await http.get(f"/edit/offer/{ident}/de")).text) | {"title": title}
            serving = other.matcher
            start = time.perf_counter()
            await http.post(f"/edit/offer/{ident}/de", data=form)
            while title not in other.handle(Incoming(user="bench", payload=f"o:{ident}:card")).plain():
                await asyncio.sleep(0.01)
            elsewhere.append(time.perf_counter() - start)
            for _ in range(3000):  # its ranker retrains; the next edit does not race it
                if other.matcher is not serving:
                    break
                await asyncio.sleep(0.1)
        watcher.cancel()
    await store.close()
    return answers, retrained, elsewhere


async def _page_times(config: Config, catalogue_dir: Path, tmp: Path, rounds: int) -> tuple[int, dict[str, list[float]]]:
    from bot.app import build_matcher
    from bot.bench import large_matcher, synthetic_folder
    from bot.catalogue import load_catalogue
    from bot.engine import Engine
    from bot.store import Pseudonyms, Store, sqlite_url
    from bot.web.workbench import Workbench

    folder = tmp / "large"
    synthetic_folder(catalogue_dir, folder, 100 * len(load_catalogue(catalogue_dir).offers))
    catalogue = load_catalogue(folder)
    matcher = large_matcher(catalogue, build_matcher(load_catalogue(catalogue_dir), config))
    store = await Store.open(sqlite_url(tmp / "large-data"), Pseudonyms(b"b" * 32))
    for n in range(20):  # an inbox with questions to rank
        store.keep_unanswered("de", f"Wo kann ich am Wochenende Schach spielen, Frage {n}?")
    await store.flush()
    bench = Workbench(folder, Engine(catalogue, matcher), store)
    last = list(catalogue.offers)[-1]
    pages = ["/", f"/edit/offer/{last}/de", f"/edit/offer/{last}/ar", f"/edit/office/{next(iter(catalogue.offices))}/fa",
             f"/preview/{last}/fa", f"/history/offer/{last}/de", "/translations/ar", "/translations/ar?page=9",
             "/items/offer", "/inbox", "/figures", "/links"]
    times: dict[str, list[float]] = {page: [] for page in pages}
    async with _client(bench) as http:
        for page in pages:  # the first visit reads and indexes the files; counted apart
            response = await http.get(page)
            assert response.status_code == 200, (page, response.status_code)
        for _ in range(rounds):
            for page in pages:
                start = time.perf_counter()
                await http.get(page)
                times[page].append((time.perf_counter() - start) * 1000)
    await store.close()
    return len(catalogue.offers), times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_web_bench(config: Config, catalogue_dir: Path, edits: int = 5, rounds: int = 20) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        answers, retrained, elsewhere = await _edit_latency(config, catalogue_dir, Path(tmp), edits)
        offers, times = await _page_times(config, catalogue_dir, Path(tmp), rounds)
    edit_s, learned_s = statistics.median(answers), statistics.median(retrained)
    print(f"edit -> the bot answers with it: median {edit_s:.2f} s, max {max(answers):.2f} s over {edits} edits "
          f"(the ranker, retrained in the background, serves after a median {learned_s:.1f} s)")
    other_s = statistics.median(elsewhere)
    print(f"edit -> a bot in another process (its catalogue watcher) answers with it: median {other_s:.2f} s "
          f"over {len(elsewhere)} edits")
    every = [t for values in times.values() for t in values]
    print(f"pages with the 100x catalogue ({offers} offers), {rounds} rounds:")
    for page, values in times.items():
        print(f"  {page:48} median {statistics.median(values):6.1f} ms  p95 {_pct(values, 0.95):6.1f} ms")
    print(f"edit_to_answer_s={edit_s:.2f} edit_to_other_process_s={other_s:.2f} edit_to_retrained_s={learned_s:.1f} "
          f"offers_100x={offers} "
          f"page_p50_ms={statistics.median(every):.1f} page_p95_ms={_pct(every, 0.95):.1f}")
    return 0
