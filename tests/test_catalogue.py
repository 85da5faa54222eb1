from __future__ import annotations

import os
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


# -- hostile or broken files: each is one sentence with file:line, never a traceback --------------

# 9 levels of 9 aliases: a few hundred bytes that expand to 9**9 (387 million) entries.
ALIAS_BOMB = "".join(
    f"    b{n}: &b{n} [{', '.join([f'*b{n - 1}'] * 9) if n else ', '.join(['lol'] * 9)}]\n" for n in range(9)
)


def test_a_yaml_alias_bomb_is_refused_at_its_line(catalogue_copy):
    path = catalogue_copy / "parents.yaml"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split("  - id: ", 1)
    # Aliased into an offer's id, as in the audit: anything that walks it runs out of memory.
    path.write_text(head + "  - lol:\n" + ALIAS_BOMB + "    id: *b8\n  - id: " + rest, encoding="utf-8")
    alias_line = head.count("\n") + 3  # the first alias: `*b0` in the second row of the bomb
    problems = _problems(catalogue_copy)
    assert any(p.endswith(f"parents.yaml:{alias_line}: YAML aliases (*name) are not allowed: write the value out instead")
               for p in problems), problems


@pytest.mark.parametrize(
    ("key", "kind"),
    [("[a, b]", "a list"), ("{a: 1}", "a mapping"), ("12", "a number"), ("yes", "true/false"), ("~", "empty")],
)
def test_a_key_that_is_not_text_is_refused_at_its_line(catalogue_copy, key, kind):
    line = _edit(catalogue_copy / "daycare.yaml", "    topic: daycare\n", f"    topic: daycare\n    {key}: x\n") + 1
    problems = _problems(catalogue_copy)
    assert any(p.endswith(f"daycare.yaml:{line}: a key must be text, not {kind}: put it in quotes") for p in problems), problems


def test_deep_nesting_is_refused_at_its_line_not_a_recursion_error(catalogue_copy):
    # 950 levels (libyaml's own limit is 1,000): deep enough to exhaust Python's recursion limit.
    deep = "".join(f"{' ' * (i + 5)}n:\n" for i in range(950)) + f"{' ' * 955}x\n"
    line = _edit(catalogue_copy / "daycare.yaml", "    topic: daycare\n", "    topic: daycare\n    deep:\n" + deep)
    problems = _problems(catalogue_copy)
    found = [int(m.group(1)) for p in problems if (m := re.search(r"daycare\.yaml:(\d+): nested more than 64 levels deep$", p))]
    assert len(found) == 1 and line < found[0] < line + 100, problems  # where the 64th level opens


@pytest.mark.parametrize("where", ["x.yaml", "lang/xx.yaml", "archive/old.yaml"])
def test_a_folder_named_yaml_is_its_own_sentence(catalogue_copy, capsys, where):
    from bot.cli import main

    (catalogue_copy / where).mkdir(parents=True)
    assert main(["validate", str(catalogue_copy)]) == 1  # not 2, "the database does not answer"
    out = capsys.readouterr().out.splitlines()
    assert any(line.endswith(f"{where}: a folder, not a file: rename it (only files may end in .yaml) or move it elsewhere")
               for line in out), out


@pytest.mark.parametrize("where", ["x.yaml", "lang/xx.yaml", "lang/pl.yaml"])
def test_a_broken_link_is_its_own_sentence(catalogue_copy, where):
    link = catalogue_copy / where
    link.unlink(missing_ok=True)
    link.symlink_to(catalogue_copy / "gone.yaml")
    problems = _problems(catalogue_copy)
    assert any(p.endswith(f"{where}: a broken symbolic link: point it at a file or remove it") for p in problems), problems
    assert not any("missing translation file" in p for p in problems), problems


def test_a_fifo_named_yaml_does_not_block_the_reader(catalogue_copy):
    os.mkfifo(catalogue_copy / "x.yaml")
    assert any(p.endswith("x.yaml: not a regular file: replace it with a YAML file") for p in _problems(catalogue_copy))


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(catalogue_copy):
    path = catalogue_copy / "daycare.yaml"
    line = _edit(path, "title: Kita-Platz über Kibeka suchen", "title: Kita-Platz Xber Kibeka suchen")
    path.write_bytes(path.read_bytes().replace(b"Platz Xber", b"Platz \xfcber", 1))  # Latin-1 "ü"
    problems = _problems(catalogue_copy)
    expected = f"daycare.yaml:{line}: not UTF-8 text: byte 0xFC in column 23 cannot be read; save the file as UTF-8"
    assert any(p.endswith(expected) for p in problems), problems


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(catalogue_copy):
    from bot.catalogue.yamlsource import MAX_FILE_BYTES

    (catalogue_copy / "huge.yaml").write_text("#" * (MAX_FILE_BYTES + 1), encoding="utf-8")
    problems = _problems(catalogue_copy)
    assert any(p.endswith("huge.yaml: 16.0 MB, more than 16 MB: split it, or remove what does not belong in it")
               for p in problems), problems


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("daycare.yaml", "summary: Im Portal Kibeka", "summary: " + "x" * 50_000 + " Im Portal Kibeka",
         "offer 'kita-anmeldung': 'summary' has 50,234 characters, more than 2,000: shorten it"),
        ("daycare.yaml", "title: Kita-Platz über Kibeka suchen", "title: " + "Kita " * 100,
         "offer 'kita-anmeldung': 'title' has 499 characters, more than 300: shorten it"),
        ("daycare.yaml", "keywords: [kita,", "keywords: [" + "k" * 101 + ", kita,",
         "offer 'kita-anmeldung': an entry of 'keywords' has 101 characters, more than 100: shorten it"),
        ("lang/ar.yaml", "    summary: ", "    summary: " + "ب" * 2001 + " ",
         "[ar]: 'summary' has "),
        ("topics.yaml", "    de: [deutschkurs,", "    de: [" + "d" * 101 + ", deutschkurs,",
         "topic 'language-course': 'synonyms' [de] has 101 characters, more than 100: shorten it"),
    ],
)
def test_an_absurdly_long_field_is_refused_with_its_line(catalogue_copy, file, old, new, message):
    line = _edit(catalogue_copy / file, old, new)
    problems = _problems(catalogue_copy)
    assert any(f"{file}:{line}: " in p and message in p for p in problems), problems


def test_a_topics_entry_offer_must_be_one_of_its_own(catalogue_copy):
    line = _edit(catalogue_copy / "topics.yaml", "  entry: [integrationskurs]", "  entry: [integrationskurs, kita-anmeldung]")
    problems = _problems(catalogue_copy)
    assert any(f"topics.yaml:{line}: topic 'language-course': 'entry' must list offers of this topic: "
               "'kita-anmeldung' is not one" in p for p in problems), problems


def test_an_absurdly_long_news_text_is_refused_with_its_line(catalogue_copy):
    path = catalogue_copy / "news.yaml"
    text = path.read_text(encoding="utf-8").replace("news: []", "news:\n  - id: long\n    topic: daycare\n    date: 2027-01-10\n"
                                                  "    title: {de: Neu}\n    text: {de: " + "x" * 2001 + "}\n    source: https://kassel.de\n")
    path.write_text(text, encoding="utf-8")
    line = text.split("\n").index("    text: {de: " + "x" * 2001 + "}") + 1
    problems = _problems(catalogue_copy)
    assert any(p.endswith(f"news.yaml:{line}: news 'long': 'text' [de] has 2,001 characters, more than 2,000: shorten it")
               for p in problems), problems


def test_the_benchmarks_synthetic_catalogue_is_valid(tmp_path):
    from bot.bench import synthetic_folder
    from bot.catalogue import DEFAULT_CATALOGUE

    count = synthetic_folder(DEFAULT_CATALOGUE, tmp_path / "synthetic", 150)
    assert count > 100 and validate(tmp_path / "synthetic") == []  # no aliases for the copies' shared lists


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


# -- examples, notices, first steps, numbers, source dates ------------------------------------

def test_one_question_taught_for_two_offers_is_reported_at_both_places(catalogue_copy):
    question = "wo ist hier ein kurs zum lesen lernen fuer oma"
    for path, ident in ((catalogue_copy / "language-course.yaml", "alphabetisierungskurs"),
                        (catalogue_copy / "daycare.yaml", "kita-anmeldung")):
        text = path.read_text(encoding="utf-8")
        start = text.index(f"  - id: {ident}\n")
        at = text.index("    examples:\n", start) + len("    examples:\n")
        path.write_text(text[:at] + f'      - "{question}"\n' + text[at:], encoding="utf-8")
    problems = _problems(catalogue_copy)
    hit = [p for p in problems if question[:30] in p]
    assert len(hit) == 1 and "one question must teach one answer" in hit[0], hit
    assert re.search(r"daycare\.yaml:\d+", hit[0]) and re.search(r"language-course\.yaml:\d+", hit[0])


def test_an_example_must_be_a_question_of_sensible_length(catalogue_copy):
    path = catalogue_copy / "daycare.yaml"
    text = path.read_text(encoding="utf-8")
    at = text.index("    examples:\n") + len("    examples:\n")
    path.write_text(text[:at] + f'      - "{"x" * 500}"\n' + text[at:], encoding="utf-8")
    assert any("must be a question of 2-400 characters" in p for p in _problems(catalogue_copy))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("notices.yaml", "offers: [integrationskurs,", "offers: [integrationskurz,", "unknown offer 'integrationskurz'"),
        ("first-steps.yaml", "good: [berufssprachkurs]", "good: [berufsprachkurs]", "unknown offer 'berufsprachkurs'"),
        ("university.yaml", "source_date: 2019", "source_date: 2019-13", "bad source_date '2019-13'"),
        ("language-course.yaml", '{{eur:1603}}', '{{eur:16.03.}}', "malformed number"),
        ("school.yaml", "[Geburtsurkunde des Kindes (oder das Familienstammbuch), ",
         "[Geburtsurkunde des Kindes, oder das Familienstammbuch, ", "starts in lower case: an item split at a comma?"),
    ],
)
def test_rules_first_steps_numbers_and_dates_are_checked(catalogue_copy, file, old, new, message):
    line = _edit(catalogue_copy / file, old, new)
    hits = [p for p in _problems(catalogue_copy) if message in p]
    assert hits and any(f"{file}:" in p for p in hits), hits
    assert line > 0


def test_a_translation_must_keep_the_germans_amounts(catalogue_copy):
    _edit(catalogue_copy / "lang" / "en.yaml", "{{eur:1603}}", "1603 €")
    hits = [p for p in _problems(catalogue_copy) if "amounts in 'cost' differ" in p]
    assert hits and "lang/en.yaml" in hits[0]


def test_no_held_out_question_is_a_training_example(catalogue):
    """Our held-out sets (eval/) measure only while the ranker never trains on them."""
    import yaml

    from bot.matching.normalise import normalise, tokens

    def key(text: str) -> str:
        return " ".join(tokens(normalise(text)))

    trained = {key(q) for offer in catalogue.offers.values() for qs in offer.examples().values() for q in qs}
    trained |= {key(q) for topic in catalogue.topics.values() for qs in topic.examples.values() for q in qs}
    trained |= {key(q) for qs in catalogue.out_of_scope.values() for q in qs}
    held = [item["q"] for path in sorted((Path(__file__).parents[1] / "eval").glob("*/*.yaml"))
            for item in yaml.safe_load(path.read_text(encoding="utf-8"))]
    assert len(held) > 1000
    assert [q for q in held if key(q) in trained] == []
