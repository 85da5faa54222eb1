"""Editors and multipliers: links, posters, previews, stale data, reload under load."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.catalogue import load_catalogue
from bot.config import Config
from bot.engine import Engine
from bot.reply import Incoming
from bot.runner import Runtime
from tests.helpers import TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]


def editable_runtime(tmp_path: Path):
    """A copy of the catalogue an editor can change, and the runtime serving it (no store needed)."""
    folder = tmp_path / "kassel"
    shutil.copytree(ROOT / "offers" / "kassel", folder)
    catalogue = load_catalogue(folder)
    engine = Engine(catalogue, build_matcher(catalogue))
    runtime = Runtime(Config(data_dir=tmp_path / "data"), folder, engine, None)
    return folder, catalogue, engine, runtime


def run(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bot", *(["--config", str(config)] if config else []), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "BILDUNGSLOTSE_SECRET": TEST_SECRET})


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\ntelegram:\n  username: lotse_test_bot\n"
                    "matrix:\n  user_id: \"@lotse:example.org\"\n", encoding="utf-8")
    return path


def test_link_for_a_multiplier(config):
    result = run("link", "--lang", "ar", "--topic", "daycare", "--district", "Nord-Holland", config=config)
    assert result.returncode == 0, result.stderr
    assert "https://t.me/lotse_test_bot?start=ar-daycare_d10" in result.stdout
    assert "https://matrix.to/#/@lotse:example.org" in result.stdout
    bad = run("link", "--lang", "ar", "--topic", "kita", config=config)
    assert bad.returncode == 2 and "unknown topic 'kita'" in bad.stderr


def test_district_links_set_the_district(catalogue, matcher):
    engine = Engine(catalogue, matcher)
    reply = engine.handle(Incoming(user="m", text="/start ar-daycare_d10"))
    assert reply.language == "ar" and reply.effects[-1].language == "ar"
    assert any(getattr(e, "district", None) == "Nord-Holland" for e in reply.effects)


@pytest.mark.parametrize("lang", ["ar", "de", "uk"])
def test_poster_png_pdf_svg_with_a_readable_qr_code(config, tmp_path, lang):
    import zxingcpp
    from PIL import Image

    png = tmp_path / f"poster-{lang}.png"
    result = run("poster", "--lang", lang, "--topic", "daycare", "-o", str(png), config=config)
    assert result.returncode == 0, result.stderr
    image = Image.open(png)
    assert image.size == (1240, 1754)  # A4 at 150 dpi
    codes = zxingcpp.read_barcodes(image)
    assert [c.text for c in codes] == [f"https://t.me/lotse_test_bot?start={lang}-daycare"]
    svg = tmp_path / "poster.svg"
    assert run("poster", "--lang", lang, "--topic", "daycare", "-o", str(svg), config=config).returncode == 0
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<svg") and ('direction="rtl"' in text) == (lang == "ar")
    pdf = tmp_path / "poster.pdf"
    assert run("poster", "--lang", lang, "--topic", "daycare", "-o", str(pdf), config=config).returncode == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_poster_for_every_language(config, tmp_path):
    result = run("poster", "--all-languages", "--topic", "school", "-o", str(tmp_path / "p.png"), config=config)
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("p-*.png"))) == 10


def test_preview_shows_what_the_bot_sends(config):
    result = run("preview", "kita-anmeldung", "--lang", "ar", config=config)
    assert result.returncode == 0 and "\u200f" in result.stdout and "kibeka.kassel.de" in result.stdout
    every = run("preview", "kita-anmeldung", "--all-languages", config=config)
    assert every.stdout.count("────") >= 20


def test_stale_lists_old_entries_most_used_first(config, catalogue_copy, tmp_path):
    offers = catalogue_copy / "daycare.yaml"
    offers.write_text(offers.read_text(encoding="utf-8").replace("last_verified: 2026-11-01", "last_verified: 2024-01-01", 2),
                      encoding="utf-8")
    chat = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "--catalogue", str(catalogue_copy), "chat"],
                          input="Kita-Beitrag zu teuer\n", capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "BILDUNGSLOTSE_SECRET": TEST_SECRET})
    assert chat.returncode == 0, chat.stderr
    result = run("--catalogue", str(catalogue_copy), "stale", "--months", "12", config=config)
    lines = result.stdout.splitlines()
    assert "kita-beitragsfrei" in lines[1]  # asked about, so first
    listed = [line.split()[2] for line in lines[1:-1]]
    assert "kita-anmeldung" in listed and lines[-1].startswith(f"stale={len(listed)} ")


async def test_reload_under_load_never_serves_an_invalid_catalogue(tmp_path):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    offers = folder / "daycare.yaml"
    original = offers.read_text(encoding="utf-8")
    served: dict[str, str] = {catalogue.version: "Kita-Platz über Kibeka suchen"}
    answered = 0
    seen: set[tuple[str, str]] = set()  # distinct answers only: a reload trains for seconds meanwhile
    failures: list[BaseException] = []
    done = asyncio.Event()

    async def ask() -> None:
        nonlocal answered
        while not done.is_set():
            try:
                reply = engine.handle(Incoming(user=f"u{answered % 50}", text="Kitaplatz bei Kibeka suchen"))
                seen.add((reply.version, reply.plain()))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)
            answered += 1
            await asyncio.sleep(0.002)  # a steady load that leaves the training thread the GIL too

    asker = asyncio.create_task(ask())
    for round_ in range(4):  # each valid edit trains the ranker again: seconds of CPU
        if round_ % 2 == 0:
            title = f"Kita-Platz über Kibeka suchen (Fassung {round_})"
            offers.write_text(original.replace("title: Kita-Platz über Kibeka suchen", f"title: {title}", 1), encoding="utf-8")
            message = await runtime.reload()
            assert message.startswith("Reloaded"), message
            served[engine.catalogue.version] = title
        else:
            offers.write_text(original.replace("office: kita-kassel", "office: nowhere", 1), encoding="utf-8")
            assert (await runtime.reload()).startswith("Not reloaded")
        await asyncio.sleep(0.02)
    done.set()
    await asker
    assert not failures and answered > 100
    for version, text in seen:
        assert version in served  # only valid versions ever answered
        assert served[version] in text  # and each answer is wholly from that version


async def test_replies_keep_flowing_while_a_slow_reload_builds(tmp_path, monkeypatch):
    """Building the matcher (seconds of CPU for a big catalogue or a learned ranker) happens off
    the event loop: here it cannot finish before 50 questions were answered meanwhile."""
    import bot.app

    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    building, release = threading.Event(), threading.Event()
    real_build_matcher = bot.app.build_matcher

    def slow_build_matcher(*args, **kwargs):
        building.set()
        release.wait(timeout=60)  # only a safety net: on the event loop this would hold every reply
        return real_build_matcher(*args, **kwargs)

    monkeypatch.setattr(bot.app, "build_matcher", slow_build_matcher)
    offers = folder / "daycare.yaml"
    offers.write_text(offers.read_text(encoding="utf-8").replace(
        "title: Kita-Platz über Kibeka suchen", "title: Kita-Platz über Kibeka finden", 1), encoding="utf-8")
    reload = asyncio.create_task(runtime.admin("reload"))
    during: list[str] = []
    while not reload.done() and len(during) < 50:
        reply = engine.handle(Incoming(user="u", text="Kitaplatz bei Kibeka suchen"))
        if building.is_set():
            during.append(reply.version)
        await asyncio.sleep(0.001)  # a steady load; a loop that never waits starves the loading thread of the GIL
    release.set()
    assert (await reload).startswith("Reloaded"), during
    # Answered meanwhile; the new texts, once validated, while the ranker built (runner._texts_first).
    assert during == [engine.catalogue.version] * 50 and engine.catalogue.version != catalogue.version
    assert "Kibeka finden" in engine.handle(Incoming(user="u", text="Kitaplatz bei Kibeka suchen")).plain()


async def test_a_refused_reload_logs_a_summary_not_a_line_per_problem(tmp_path, caplog):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    offers = folder / "daycare.yaml"
    text = offers.read_text(encoding="utf-8")
    offers.write_text(text.replace("office: kita-kassel", "office: nowhere"), encoding="utf-8")  # one per offer
    broken = text.count("office: kita-kassel")
    for n in range(30):
        (folder / f"extra-{n}.yaml").write_text("offers: nothing\n", encoding="utf-8")
    answer = await runtime.admin("reload")
    records = [r for r in caplog.records if r.name == "bot.runner" and r.levelname == "ERROR"]
    assert len(records) == 1, [r.getMessage() for r in records]
    logged = records[0].getMessage()
    assert logged.startswith(f"reload refused: {broken + 30} problem(s) in the catalogue; still serving {catalogue.version}")
    assert len(logged.splitlines()) == 1 + 20 + 1  # the headline, the first 20, how many more
    assert logged.endswith(f"… and {broken + 30 - 20} more (bildungslotse validate lists all)")
    assert answer.splitlines()[1:] == [line.strip() for line in logged.splitlines()[1:]]


async def test_the_running_bot_reloads_an_edited_catalogue(tmp_path):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    watcher = asyncio.create_task(runtime.watch(every_s=0.05))
    try:
        school = folder / "school.yaml"
        school.write_text(school.read_text(encoding="utf-8").replace("topic: school", "topic: schools", 1), encoding="utf-8")
        await asyncio.sleep(0.3)
        assert engine.catalogue.version == catalogue.version  # invalid: the old one keeps serving
        school.write_text(school.read_text(encoding="utf-8").replace("topic: schools", "topic: school", 1)
                          .replace("title: Intensivklasse und Intensivkurs Deutsch", "title: Intensivklasse Deutsch", 1),
                          encoding="utf-8")
        assert await _until(lambda: engine.catalogue.version != catalogue.version)
        assert engine.catalogue.offers["intensivklasse"].text("de").title == "Intensivklasse Deutsch"
    finally:
        watcher.cancel()


async def _until(condition, rounds: int = 9000) -> bool:
    """Let the event loop run until `condition()` holds; a bound on waiting (a reload trains the
    classifier again, which takes long on a busy machine), not a timed assertion."""
    for _ in range(rounds):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def test_the_watcher_survives_a_file_that_broke_it_and_loads_the_next_good_edit(tmp_path, caplog):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    watcher = asyncio.create_task(runtime.watch(every_s=0.02))
    await asyncio.sleep(0)  # the watcher has seen the files as they are
    try:
        offers = folder / "daycare.yaml"
        original = offers.read_text(encoding="utf-8")
        # A list as a key: a TypeError traceback in the reader used to end the watcher for good.
        offers.write_text(original.replace("    topic: daycare\n", "    topic: daycare\n    [a, b]: 1\n", 1), encoding="utf-8")
        assert await _until(lambda: "reload refused" in caplog.text), caplog.text
        assert "a key must be text, not a list" in caplog.text and not watcher.done()
        offers.write_text(original.replace("title: Kita-Platz über Kibeka suchen", "title: Kita-Platz finden", 1), encoding="utf-8")
        assert await _until(lambda: engine.catalogue.version != catalogue.version), caplog.text
        assert engine.catalogue.offers["kita-anmeldung"].text("de").title == "Kita-Platz finden"
    finally:
        watcher.cancel()


async def test_the_watcher_logs_its_own_failure_and_keeps_watching(tmp_path, caplog, monkeypatch):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    real, calls = runtime.fingerprint, []

    def failing_once() -> tuple:
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("a name the file system cannot encode")
        return real()

    monkeypatch.setattr(runtime, "fingerprint", failing_once)
    watcher = asyncio.create_task(runtime.watch(every_s=0.02))
    try:
        assert await _until(lambda: "catalogue watcher: an unexpected error" in caplog.text)
        school = folder / "school.yaml"
        school.write_text(school.read_text(encoding="utf-8").replace(
            "title: Intensivklasse und Intensivkurs Deutsch", "title: Intensivklasse Deutsch", 1), encoding="utf-8")
        assert await _until(lambda: engine.catalogue.version != catalogue.version)
        assert engine.catalogue.offers["intensivklasse"].text("de").title == "Intensivklasse Deutsch"
    finally:
        watcher.cancel()


async def test_the_watcher_notices_a_broken_link_and_says_what_it_is(tmp_path, caplog):
    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    watcher = asyncio.create_task(runtime.watch(every_s=0.02))
    await asyncio.sleep(0)  # the watcher has seen the files as they are
    try:
        (folder / "lang" / "xx.yaml").symlink_to(folder / "gone.yaml")
        assert await _until(lambda: "reload refused" in caplog.text), caplog.text
        assert "xx.yaml: a broken symbolic link: point it at a file or remove it" in caplog.text
        assert engine.catalogue is catalogue
    finally:
        watcher.cancel()


async def test_admin_reload_always_answers(tmp_path, monkeypatch, caplog):
    import bot.app

    folder, catalogue, engine, runtime = editable_runtime(tmp_path)
    offers = folder / "daycare.yaml"
    line = offers.read_text(encoding="utf-8").split("    topic: daycare\n")[0].count("\n") + 2
    offers.write_text(offers.read_text(encoding="utf-8").replace("    topic: daycare\n", "    topic: daycare\n    [a, b]: 1\n", 1),
                      encoding="utf-8")
    answer = await runtime.admin("reload")
    # The file is unreadable as a whole, so its offers' translations are reported as unknown too.
    assert re.match(rf"Not reloaded: \d+ problem\(s\); still serving version {catalogue.version}\.\n", answer), answer
    assert f"daycare.yaml:{line}: a key must be text, not a list: put it in quotes" in answer

    def out_of_memory(*args: object) -> None:
        raise MemoryError

    shutil.copy(ROOT / "offers" / "kassel" / "daycare.yaml", offers)
    monkeypatch.setattr(bot.app, "build_matcher", out_of_memory)
    answer = await runtime.admin("reload")
    assert answer == f"Not reloaded: MemoryError while building the catalogue; still serving version {catalogue.version}."
    assert "reload failed (MemoryError)" in caplog.text and engine.catalogue is catalogue


def test_mark_translated_clears_outdated(catalogue_copy):
    from bot.catalogue.coverage import DRAFT, OUTDATED, measure

    offers = catalogue_copy / "daycare.yaml"
    offers.write_text(offers.read_text(encoding="utf-8").replace("cost: Das Portal ist kostenlos.", "cost: Kostenlos.", 1),
                      encoding="utf-8")
    assert dict(measure(catalogue_copy).rows)["offer kita-anmeldung"]["tr"] == OUTDATED
    result = run("--catalogue", str(catalogue_copy), "mark-translated", "--lang", "tr", "kita-anmeldung")
    assert result.returncode == 0, result.stderr
    rows = dict(measure(catalogue_copy).rows)
    assert rows["offer kita-anmeldung"]["tr"] == DRAFT and rows["offer kita-anmeldung"]["ar"] == OUTDATED
