from __future__ import annotations

import re

import pytest

from bot.engine import Engine
from bot.reply import Incoming, Reply
from bot.text import LRI, PDI, RLM


def ask(engine: Engine, text: str = "", payload: str | None = None, user: str = "u1", **kw) -> Reply:
    return engine.handle(Incoming(user=user, text=text, payload=payload, **kw))


def payloads(reply: Reply) -> list[str]:
    return [b.payload for m in reply.messages for row in m.buttons for b in row]


def test_start_greets_in_the_platform_language_with_topic_buttons(engine):
    reply = ask(engine, "/start", language_hint="tr-TR")
    assert reply.language == "tr"
    topics = [p for p in payloads(reply) if p.startswith("t:")]
    assert len(topics) == 8
    assert "menu:language" in payloads(reply) and "fs:start" in payloads(reply)


def test_persian_platform_hint_variants(engine):
    assert ask(engine, "/start", language_hint="fa-IR").language == "fa"
    assert ask(engine, "/start", user="u2", language_hint="prs").language == "fa"


def test_question_is_answered_in_its_language_with_one_card_and_the_next_step(engine, catalogue):
    reply = ask(engine, "Где найти курсы немецкого языка для взрослых?", language_hint="en")
    assert reply.language == "ru"
    assert reply.category == "language-course"
    assert reply.answered is True
    top = reply.matches[0].offer
    text = reply.plain()
    assert catalogue.offers[top].text("ru").title in text
    assert "💶" in text and "➡️" in text  # the cost and the next step are on the first screen
    buttons = payloads(reply)
    assert f"o:{top}:contact" in buttons and f"o:{top}:desk" in buttons
    also = [p for p in buttons if p.startswith("o:") and p.endswith(":card")]
    assert 1 <= len(also) <= 2 and f"o:{top}:card" not in also  # the other fitting offers are buttons


def test_card_is_one_screen_and_the_office_is_one_button_away(engine, catalogue):
    reply = ask(engine, payload="o:mbe-caritas:card")
    assert len(reply.plain()) <= 1200
    contact = ask(engine, payload="o:mbe-caritas:contact").plain()
    office = catalogue.offices["caritas-kassel"]
    assert office.address in contact and office.phone in contact and office.website in contact


def test_chosen_language_always_wins(engine):
    ask(engine, payload="lang:uk")
    reply = ask(engine, "Wo finde ich einen Deutschkurs?", language_hint="de")
    assert reply.language == "uk"


def test_language_picker_lists_native_names(engine):
    reply = ask(engine, "/language")
    labels = [b.label for m in reply.messages for row in m.buttons for b in row]
    assert "العربية" in labels and "Deutsch" in labels and "Türkçe" in labels and len(labels) == 10


def test_topic_browsing_lists_every_offer_of_the_topic(engine, catalogue):
    reply = ask(engine, payload="t:daycare")
    offers = [p.split(":")[1] for p in payloads(reply) if p.startswith("o:")]
    assert offers == list(catalogue.by_topic["daycare"])


@pytest.mark.parametrize("action", ["contact", "map", "bring", "desk", "details", "more", "card"])
def test_every_offer_button_answers(engine, catalogue, action):
    for ident in catalogue.offers:
        reply = ask(engine, payload=f"o:{ident}:{action}", chosen_language="ar")
        assert reply.messages and reply.plain().strip(), (ident, action)


def test_desk_sentence_shows_german_and_translation(engine, catalogue):
    offer = catalogue.offers["kita-anmeldung"]
    text = ask(engine, payload="o:kita-anmeldung:desk", chosen_language="tr").plain()
    assert offer.text("de").desk in text and offer.text("tr").desk in text


def test_bring_lists_documents(engine, catalogue):
    text = ask(engine, payload="o:schuleingangsuntersuchung:bring", chosen_language="en").plain()
    for item in catalogue.offers["schuleingangsuntersuchung"].text("en").bring:
        assert item in text


def test_map_without_coordinates_searches_the_address(engine):
    reply = ask(engine, payload="o:integrationskurs:map")
    assert "openstreetmap.org/search?query=Wilhelmsh" in reply.plain()
    assert reply.messages[0].location is None


def test_nothing_fits_gives_honest_answer_and_counselling(engine, catalogue):
    reply = ask(engine, "Wann spielt Borussia Dortmund am Samstag?")
    assert reply.category is None and reply.answered is False
    assert f"o:{catalogue.fallback_offers[0]}:card" in payloads(reply)  # counselling, one tap away
    assert any(p.startswith("t:") for p in payloads(reply))


@pytest.mark.parametrize("text", ["kann ich mit einem echten Menschen sprechen?", "can I talk to a real person?",
                                  "أريد التحدث مع موظف حقيقي", "хочу поговорить с живым человеком"])
def test_without_a_desk_a_wish_for_a_person_gets_the_counselling_people(engine, catalogue, text):
    assert engine.desk is None  # no handover desk in this configuration
    reply = ask(engine, text)
    counselling = {catalogue.offers[o].topic for o in catalogue.fallback_offers}
    if reply.answered:  # the matcher found a counselling offer itself
        assert catalogue.offers[reply.matches[0].offer].topic in counselling
    else:  # or the people of the fallback offers, without a "sorry"
        assert f"o:{catalogue.fallback_offers[0]}:card" in payloads(reply)
        assert "don't know an offer" not in ask(engine, text, user="u2", chosen_language="en").plain()


def test_without_a_desk_a_wish_for_a_person_about_something_is_answered(engine, catalogue):
    reply = ask(engine, "Kann ich bei der Caritas mit einem Berater über meine Papiere sprechen?")
    assert reply.answered is True and catalogue.offers[reply.matches[0].offer].topic == "counselling"
    reply = ask(engine, "Kann ich mit jemandem über die Anmeldung in der Kita sprechen?", user="u2")
    assert reply.answered is True and reply.category == "daycare"


def test_more_offers_pages_through_results(engine):
    first = ask(engine, payload="o:mbe-caritas:more")
    shown = {p.split(":")[1] for p in payloads(first) if p.startswith("o:")}
    assert "mbe-caritas" not in shown
    assert "more:" in payloads(first)
    second = ask(engine, payload="more:")
    assert not shown & {p.split(":")[1] for p in payloads(second) if p.startswith("o:")}


def test_rtl_reply_isolates_phone_numbers(engine):
    reply = ask(engine, payload="o:mbe-caritas:contact", chosen_language="ar")
    text = reply.plain()
    assert f"{LRI}0561 7004-211{PDI}" in text
    assert all(line.startswith(RLM) for line in text.splitlines() if line)
    assert "\u200e" not in text  # no stray left-to-right marks


def test_ltr_reply_has_no_bidi_controls(engine):
    text = ask(engine, payload="o:mbe-caritas:contact", chosen_language="de").plain()
    assert not re.search("[\u2066-\u2069\u200e\u200f]", text)


def test_deep_links_open_language_topic_and_offer(engine):
    reply = ask(engine, "/start ar-daycare")
    assert reply.language == "ar" and reply.category == "daycare"
    reply = ask(engine, "/start fa-o-kita-anmeldung", user="u3")
    assert reply.language == "fa" and "o:kita-anmeldung:desk" in payloads(reply)
    assert ask(engine, "/start nonsense!!", user="u4").messages  # falls back to a normal start


def test_stale_button_is_explained(engine):
    reply = ask(engine, payload="o:no-such-offer:map")
    assert "t:daycare" in payloads(reply)


def test_all_button_payloads_fit_telegram(engine, catalogue):
    for ident in catalogue.offers:
        for payload in payloads(ask(engine, payload=f"o:{ident}:card")):
            assert len(payload.encode()) <= 64


def test_a_lone_german_loan_word_keeps_the_platform_language(engine):
    reply = ask(engine, "Kita", language_hint="ar")
    assert reply.language == "ar" and reply.category == "daycare"


def test_previous_language_is_kept_for_short_follow_ups(engine):
    assert ask(engine, "Где найти курсы немецкого языка?", user="f1").language == "ru"
    assert ask(engine, "Jobcenter", user="f1").language == "ru"
