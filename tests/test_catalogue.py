from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import build_matcher
from bot.catalogue import TOPICS, CatalogueError, load_catalogue, validate
from bot.languages import LANGUAGES


def test_kassel_catalogue_is_valid_and_complete(catalogue):
    assert set(catalogue.topics) == set(TOPICS)
    assert catalogue.languages == LANGUAGES
    for topic in TOPICS:
        assert len(catalogue.by_topic[topic]) >= 4, topic
    for offer in catalogue.offers.values():
        assert offer.source and offer.last_verified
        assert set(offer.texts) == set(LANGUAGES), offer.id
        german = offer.texts["de"]
        for lang, text in offer.texts.items():
            assert text.title and text.summary and text.who and text.cost and text.desk, (offer.id, lang)
            assert len(text.bring) == len(german.bring), (offer.id, lang)
            assert bool(text.conditions) == bool(german.conditions), (offer.id, lang)
    for office in catalogue.offices.values():
        assert office.source
        assert set(office.texts) == set(LANGUAGES), office.id


def test_translations_are_marked_draft_until_reviewed(catalogue):
    statuses = {t.status for o in catalogue.offers.values() for lang, t in o.texts.items() if lang != "de"}
    assert statuses <= {"draft", "reviewed"}
    assert "draft" in statuses


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in `path`; return the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    index = text.index(old)
    path.write_text(text[:index] + new + text[index + len(old):], encoding="utf-8")
    return text[:index].count("\n") + 1


def _problems(folder: Path) -> list[str]:
    problems = validate(folder)
    assert problems, "the broken catalogue was accepted"
    return problems


def test_dangling_office_reported_with_file_and_line(catalogue_copy):
    line = _edit(catalogue_copy / "daycare.yaml", "office: kita-kassel", "office: jugendamtt")
    problems = _problems(catalogue_copy)
    expected = f"daycare.yaml:{line}: offer 'kita-anmeldung': unknown office 'jugendamtt'"
    assert any(p.endswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("school.yaml", "topic: school", "topic: schools", "unknown topic 'schools'"),
        ("school.yaml", "id: intensivklasse", "id: schulanmeldung-abz", "duplicate offer id 'schulanmeldung-abz'"),
        ("offices.yaml", "phone: 0561 7004-211", "phone: call us", "malformed phone number 'call us'"),
        ("offices.yaml", "email: info@dw-region-kassel.de", "email: info(at)dw-region-kassel.de", "malformed e-mail address"),
        ("offices.yaml", "website: https://www.vhs-region-kassel.de", "website: www vhs", "malformed URL 'www vhs'"),
        ("daycare.yaml", "last_verified: 2026-11-01", "last_verified: 2026-13-01", "bad date '2026-13-01'"),
        ("daycare.yaml", "    desk: Ich möchte mein Kind", "    dsek: Ich möchte mein Kind", "unknown field 'dsek'"),
        ("school.yaml", "id: intensivklasse", "id: " + "x" * 65, "is 65 characters long; use at most 48"),
    ],
)
def test_each_kind_of_problem_names_file_line_and_subject(catalogue_copy, file, old, new, message):
    line = _edit(catalogue_copy / file, old, new)
    problems = _problems(catalogue_copy)
    hits = [p for p in problems if message in p]
    assert hits, problems
    assert any(re.search(rf"{re.escape(file)}:{line}: ", p) for p in hits), hits


def test_missing_language_is_reported(catalogue_copy):
    (catalogue_copy / "lang" / "pl.yaml").unlink()
    problems = _problems(catalogue_copy)
    assert any("missing translation file for language 'pl'" in p for p in problems)


def test_missing_translation_of_one_offer_points_to_the_offer(catalogue_copy):
    path = catalogue_copy / "lang" / "tr.yaml"
    _edit(path, "  jmd-ib:\n", "  jmd-ib-old:\n")
    problems = _problems(catalogue_copy)
    assert any("offer 'jmd-ib': no 'tr' translation" in p for p in problems), problems
    assert any("unknown offer 'jmd-ib-old'" in p for p in problems), problems


def test_yaml_syntax_error_names_the_line(catalogue_copy):
    line = _edit(catalogue_copy / "parents.yaml", "    topic: parents\n", "    topic: [parents\n")
    problems = _problems(catalogue_copy)
    assert any(re.search(r"parents\.yaml:\d+: YAML syntax", p) for p in problems), problems
    assert line > 0


def test_load_raises_with_every_problem(catalogue_copy):
    _edit(catalogue_copy / "school.yaml", "topic: school", "topic: schools")
    _edit(catalogue_copy / "daycare.yaml", "office: kita-kassel", "office: nowhere")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(catalogue_copy)
    assert len(caught.value.problems) >= 2


def test_not_a_folder(tmp_path):
    assert "not a catalogue folder" in validate(tmp_path / "missing")[0]


def test_catalogue_is_immutable(catalogue):
    with pytest.raises((TypeError, AttributeError)):
        catalogue.offers["x"] = None  # type: ignore[index]
    offer = next(iter(catalogue.offers.values()))
    with pytest.raises(AttributeError):
        offer.topic = "school"  # type: ignore[misc]


def test_coverage_of_the_kassel_catalogue_is_complete(capsys):
    from bot.cli import main

    assert main(["coverage"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = dict(item.split("=") for item in last.split())
    assert figures["languages"] == "10" and float(figures["complete_pct"]) == 100.0
    assert int(figures["offers"]) >= 40 and int(figures["min_offers_per_topic"]) >= 4


def test_coverage_shows_missing_and_partial_translations(catalogue_copy):
    from bot.catalogue.coverage import MISSING, PARTIAL, measure

    path = catalogue_copy / "lang" / "ro.yaml"
    _edit(path, "  jmd-ib:\n", "  jmd-ib-gone:\n")
    text = path.read_text(encoding="utf-8")
    index = text.index("  integrationskurs:\n")
    summary = text.index("    summary:", index)
    path.write_text(text[:summary] + "    sumary:" + text[summary + len("    summary:"):], encoding="utf-8")
    coverage = measure(catalogue_copy)
    rows = dict(coverage.rows)
    assert rows["offer jmd-ib"]["ro"] == MISSING
    assert rows["offer integrationskurs"]["ro"] == PARTIAL
    assert coverage.complete_pct < 100.0


def test_a_changed_german_text_makes_its_translations_outdated(catalogue_copy):
    from bot.catalogue.coverage import OUTDATED, measure

    _edit(catalogue_copy / "daycare.yaml", "title: Kita-Platz über Kibeka suchen", "title: Kita-Platz über Kibeka finden")
    rows = dict(measure(catalogue_copy).rows)
    assert set(rows["offer kita-anmeldung"].values()) == {OUTDATED, "reviewed"}  # German itself is the source
    catalogue = load_catalogue(catalogue_copy)
    assert catalogue.offers["kita-anmeldung"].texts["ar"].outdated
    assert not catalogue.offers["kita-beitragsfrei"].texts["ar"].outdated


def test_an_outdated_translation_is_not_shown(catalogue_copy):
    _edit(catalogue_copy / "daycare.yaml", "cost: Das Portal ist kostenlos.", "cost: Das Portal kostet nichts.")
    offer = load_catalogue(catalogue_copy).offers["kita-anmeldung"]
    assert offer.text("ar").cost == "Das Portal kostet nichts."  # German is what is true now


def test_the_longest_id_allowed_fits_every_button_and_link(catalogue_copy):
    """An offer id of the maximum length: valid, and every payload built from it fits Telegram's 64 bytes."""
    from bot.catalogue.loader import MAX_ID
    from bot.engine import Engine
    from bot.reply import Incoming

    long_id = ("intensivklasse-" + "x" * MAX_ID)[:MAX_ID]
    for path in catalogue_copy.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bintensivklasse\b(?!n)", long_id, text), encoding="utf-8")
    catalogue = load_catalogue(catalogue_copy)
    engine = Engine(catalogue, build_matcher(catalogue))
    payloads = []
    for action in ("card", "contact", "map", "bring", "desk", "more"):
        reply = engine.handle(Incoming(user="long", payload=f"o:{long_id}:{action}", chosen_language="ar"))
        payloads += [b.payload for m in reply.messages for row in m.buttons for b in row]
    assert f"o:{long_id}:contact" in payloads and any(long_id in p and p.startswith("share:") for p in payloads)
    assert all(len(p.encode()) <= 64 for p in payloads)
    district_link = f"ar-o-{long_id}_d{len(catalogue.districts) - 1}"  # the longest deep link to it
    assert len(district_link) <= 64 and engine.handle(Incoming(user="l2", text=f"/start {district_link}")).effects
