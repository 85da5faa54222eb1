"""Answers a newcomer can act on: one screen, the next step, a question back, the first steps."""

from __future__ import annotations

import statistics

import pytest

from bot import clarify, numbers
from bot.engine import Engine
from bot.languages import LANGUAGES
from bot.matching import Match, Result
from bot.matching.detect import Detection
from bot.matching.people import People
from bot.reply import Incoming, Reply


def ask(engine: Engine, text: str = "", payload: str | None = None, user: str = "a1", **kw) -> Reply:
    return engine.handle(Incoming(user=user, text=text, payload=payload, **kw))


def payloads(reply: Reply) -> list[str]:
    return [b.payload for m in reply.messages for row in m.buttons for b in row]


def labels(reply: Reply) -> list[str]:
    return [b.label for m in reply.messages for row in m.buttons for b in row]


def test_every_card_fits_a_phone_screen_in_every_language(engine, catalogue):
    lengths = []
    for lang in LANGUAGES:
        for ident in catalogue.offers:
            text = ask(engine, payload=f"o:{ident}:card", chosen_language=lang, user=f"len-{lang}").plain()
            lengths.append(len(text))
            assert len(text) <= 1200, (ident, lang, len(text))
    assert statistics.median(lengths) <= 700


def test_every_offer_has_a_next_step_on_its_card(engine, catalogue):
    for ident, offer in catalogue.offers.items():
        assert offer.text("de").next, ident
        assert "➡️" in ask(engine, payload=f"o:{ident}:card", chosen_language="en").plain(), ident


def test_button_labels_are_cut_at_a_word_boundary(engine, catalogue):
    for ident in catalogue.offers:
        for label in labels(ask(engine, payload=f"o:{ident}:card", chosen_language="uk")):
            assert len(label) <= 40, label
            if label.endswith("…"):
                assert not label[-2].isspace()


def test_amounts_are_written_for_the_reader(engine):
    german = ask(engine, payload="o:integrationskurs:card", chosen_language="de").plain()
    assert "1.603\u00a0€" in german and "2,29\u00a0€" in german  # babel keeps number and sign together
    english = ask(engine, payload="o:integrationskurs:card", chosen_language="en", user="en1").plain()
    assert "€1,603" in english and "1.603" not in english
    russian = ask(engine, payload="o:integrationskurs:card", chosen_language="ru", user="ru1").plain()
    assert "2,29\u00a0€" in russian and "{{" not in russian  # a long card keeps the cost's first clause


@pytest.mark.parametrize(("lang", "text"), [("de", "1.603\u00a0€"), ("en", "€1,603"), ("uk", "1\u00a0603\u00a0EUR"),
                                            ("ar", "1,603\u00a0€")])
def test_number_tokens_follow_the_locale(lang, text):
    assert numbers.localise("{{eur:1603}}", lang) == text
    assert numbers.localise("{{num:1000}} / {{eur:2.29}}", "de") == "1.000 / 2,29\u00a0€"


def test_a_rule_stated_once_shows_on_every_offer_it_concerns(engine, catalogue):
    notice = catalogue.notices["zulassungsstopp-2026"]
    affected = [i for i, o in catalogue.offers.items() if "zulassungsstopp-2026" in o.notices]
    assert {"integrationskurs", "frauen-elternkurs", "alphabetisierungskurs"} <= set(affected)
    for ident in affected:
        details = ask(engine, payload=f"o:{ident}:details", chosen_language="de").plain()
        assert notice.text("de") in details
    assert "Bereits erteilte Zulassungen gelten weiter" in notice.text("de")


NOBODY = People()


def _result(*matches: tuple[str, str, float], people: People = NOBODY) -> Result:
    return Result("de", Detection("de", 1.0), tuple(Match(o, t, s) for o, t, s in matches), True, people=people)


def test_a_question_back_when_two_topics_are_close(catalogue):
    result = _result(("kita-anmeldung", "daycare", 40.0), ("schulanmeldung-abz", "school", 35.0))
    question = clarify.needed(result, catalogue)
    assert question is not None and question.kind == "topic" and set(question.options) == {"daycare", "school"}
    assert clarify.needed(_result(("kita-anmeldung", "daycare", 80.0), ("schulanmeldung-abz", "school", 10.0)),
                          catalogue) is None


def test_a_question_back_for_whom_unless_the_person_said(catalogue):
    who = _result(("mbe-caritas", "counselling", 40.0), ("jmd-caritas", "counselling", 38.0))
    asked = clarify.needed(who, catalogue)
    assert asked is not None and asked.kind == "who"
    told = _result(("mbe-caritas", "counselling", 40.0), ("jmd-caritas", "counselling", 38.0),
                   people=People((17.0,), child=True))
    assert clarify.needed(told, catalogue) is None
    assert clarify.narrow(("mbe-caritas", "jmd-caritas"), "who", "child", catalogue)[0] == "jmd-caritas"


def test_the_answer_to_the_question_back_narrows_the_offers(engine, catalogue):
    session = engine.sessions.get("cl1")
    session.results, session.pending = ("mbe-caritas", "jmd-caritas", "mbeon"), "who"
    reply = ask(engine, payload="cl:who:child", user="cl1", chosen_language="en")
    assert catalogue.offers["jmd-caritas"].text("en").title in reply.plain()
    again = ask(engine, payload="cl:who:me", user="cl1", chosen_language="en")
    assert "no longer valid" in again.plain()  # never a second question, never a stale one


def test_an_answer_never_contradicts_the_age_given(engine, catalogue):
    reply = ask(engine, "Mein Sohn ist 17, er ist neu in Kassel und spricht kein Deutsch. Welche Schule?",
                user="age17")
    first = catalogue.offers[reply.matches[0].offer]
    assert first.fits_age(17), first.id
    assert reply.matches[0].fits_person


def test_first_steps_ask_three_questions_then_list_offers_in_order(engine, catalogue):
    user = "fs1"
    start = ask(engine, payload="fs:start", user=user, chosen_language="en")
    assert "fs:who:children" in payloads(start)
    ages = ask(engine, payload="fs:who:children", user=user)
    assert "fs:age:3-5" in payloads(ages)
    ticked = ask(engine, payload="fs:age:3-5", user=user)
    assert any(label.startswith("✓") for label in labels(ticked))
    german = ask(engine, payload="fs:german:", user=user)
    assert "fs:level:none" in payloads(german)
    goals = ask(engine, payload="fs:level:none", user=user)
    assert "fs:goal:work" in payloads(goals)
    steps = ask(engine, payload="fs:goal:work", user=user)
    offers = [p.split(":")[1] for p in payloads(steps) if p.startswith("o:")]
    first_steps = catalogue.first_steps
    assert offers[0] == first_steps.counselling_adults[0]  # counselling comes first
    assert "integrationskurs" in offers and "kita-anmeldung" in offers and "anerkennungsberatung" in offers
    assert offers.index("integrationskurs") < offers.index("kita-anmeldung") < offers.index("anerkennungsberatung")


def test_first_steps_for_adults_alone_skip_the_children(engine):
    user = "fs2"
    ask(engine, payload="fs:start", user=user, chosen_language="de")
    assert "fs:level:reading" in payloads(ask(engine, payload="fs:who:adults", user=user))
    ask(engine, payload="fs:level:reading", user=user)
    steps = payloads(ask(engine, payload="fs:goal:study", user=user))
    assert "o:alphabetisierungskurs:card" in steps and "o:uni-beratung-flucht:card" in steps
    assert not any("kita" in p for p in steps)
