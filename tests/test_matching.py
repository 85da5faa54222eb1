from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bot.matching import normalise, tokens
from bot.matching.normalise import variants


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Straße Übergänge", "strasse ubergange"),
        ("Çocuğum İSTANBUL ılık", "cocugum istanbul ilik"),
        ("Grădiniță școală", "gradinita scoala"),
        ("żłobek Łódź", "zlobek lodz"),
        ("Ёлка", "елка"),
        ("їжа Європа ґанок", "ижа европа ганок"),
        ("йод", "йод"),
        ("مَدْرَسَةٌ", "مدرسه"),
        ("أطفال إلى آخر", "اطفال الي اخر"),
        ("کودکی", "كودكي"),
        ("کتـــاب", "كتاب"),
        ("٣ سنين ۵", "3 سنين 5"),
    ],
)
def test_normalise_per_script(raw, folded):
    assert normalise(raw) == folded


def test_tokens_split_half_space_and_keep_arabizi_digits():
    assert tokens("بچه‌ام m3almeh Kita-Platz") == ["بچه", "ام", "m3almeh", "kita", "platz"]


def test_arabic_clitics_are_stripped():
    assert "مدرسه" in variants("بالمدرسه")
    assert "ابن" in variants("لابني")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Ich suche einen Sprachkurs für Anfänger", "language-course"),
        ("kindergartn platz für meine tochter", "daycare"),  # typo
        ("وين بلاقي Kita لابني؟", "daycare"),  # Arabic question, German loan word
        ("kreş nasıl bulurum", "daycare"),
        ("де курси німецької", "language-course"),
        ("ana badi kurs almani", "language-course"),  # Arabizi
        ("how do I register my son at school", "school"),
        ("szukam praktyki zawodowej po szkole ausbildung", "school-to-work"),
        ("Anerkennung meines Diploms als Ingenieur", "recognition-and-work"),
        ("مشاوره رایگان برای مهاجران", "counselling"),
    ],
)
def test_questions_find_their_topic(matcher, question, topic):
    result = matcher.match(question)
    assert result.fits, question
    assert result.category == topic, (question, result.matches[:3])


def test_german_keyword_alone_is_enough_from_any_language(matcher):
    result = matcher.match("Kibeka")
    assert result.fits and result.matches[0].offer == "kita-anmeldung"


@pytest.mark.parametrize(
    "question",
    [
        "Wie wird das Wetter morgen in Kassel?",
        "what's the best pizza place near the station",
        "أفضل مطعم شاورما",
        "Какой курс евро сегодня?",
        "ucuz uçak bileti",
    ],
)
def test_out_of_scope_questions_find_nothing(matcher, question):
    assert not matcher.match(question).fits, matcher.match(question).matches[:2]


def test_matching_is_deterministic(matcher):
    question = "brauche hilfe mit kita und schule"
    assert matcher.match(question) == matcher.match(question)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Wo kann ich meinen Sohn für die Schule anmelden?", "de"),
        ("Where can my wife learn German?", "en"),
        ("أين يمكنني تسجيل ابني في المدرسة؟", "ar"),
        ("کجا می‌توانم پسرم را در مدرسه ثبت نام کنم؟", "fa"),
        ("Oğlumu okula nerede kaydettirebilirim?", "tr"),
        ("Где я могу записать сына в школу?", "ru"),
        ("Де я можу записати сина до школи?", "uk"),
        ("Unde pot să-mi înscriu fiul la școală?", "ro"),
        ("Къде мога да запиша сина си в училище?", "bg"),
        ("Gdzie mogę zapisać syna do szkoły?", "pl"),
        ("unde pot sa il inscriu pe baiat la scoala", "ro"),
        ("gdzie moge zapisac syna do szkoly", "pl"),
    ],
)
def test_language_detection(matcher, text, lang):
    assert matcher.detector.detect(text).language == lang


def test_districts_are_found_by_name_spelling_and_alias(matcher):
    assert matcher.districts_in("Wir wohnen in Nord-Holland") == ("Nord-Holland",)
    assert matcher.districts_in("we live in nordholland") == ("Nord-Holland",)
    assert matcher.districts_in("Mütter in der Nordstadt") == ("Nord-Holland",)
    assert matcher.districts_in("بيتنا في Bad Wilhelmshöhe") == ("Bad Wilhelmshöhe",)
    assert matcher.districts_in("Wo finde ich einen Kurs?") == ()


def test_offers_in_the_named_district_come_first(matcher, catalogue):
    question = "Deutschkurs für Mütter in Wesertor"
    nearby = matcher.match(question)
    assert "Wesertor" in nearby.districts
    assert "Wesertor" in catalogue.offers[nearby.matches[0].offer].districts


def test_every_offer_and_office_serves_a_known_district(catalogue):
    known = {*catalogue.districts, "all"}
    for item in (*catalogue.offers.values(), *catalogue.offices.values()):
        assert item.districts and set(item.districts) <= known, item.id


def test_a_district_moves_an_offer_ahead_only_within_the_best_offers_topic(matcher, catalogue):
    assert "Wehlheiden" in catalogue.offers["familienzentrum-wehlheiden"].districts
    offers = list(catalogue.offers)
    ages = np.zeros(len(offers))

    def first(best: str, nearby: str) -> str:
        scores = np.full(len(offers), 0.01)
        scores[offers.index(best)], scores[offers.index(nearby)] = 0.5, 0.4  # 0.4 log-odds apart
        return matcher._rank(scores, ages, ("Wehlheiden",))[0][0]

    assert first("willkommen-von-anfang-an", "familienzentrum-wehlheiden") == "familienzentrum-wehlheiden"
    assert first("kita-anmeldung", "familienzentrum-wehlheiden") == "kita-anmeldung"  # another need


def test_a_general_question_moves_its_topics_entry_offer_ahead(matcher, catalogue):
    """A question the classifier gives to the topic, not to an offer of it, is answered by the
    offer a counsellor names first; one that names another offer by its keywords is not general."""
    from bot.matching.fusion import offer_scores

    assert catalogue.topics["daycare"].entry == ("kita-anmeldung",)
    offers, topics = list(catalogue.offers), list(catalogue.topics)
    entry, other = offers.index("kita-anmeldung"), offers.index("kindertagespflege")
    probabilities = np.zeros((2, len(offers) + 1 + len(topics)), dtype=np.float32)
    probabilities[:, len(offers) + 1 + topics.index("daycare")] = 0.6  # the topic's own class
    probabilities[:, [entry, other]] = 0.2
    signals = matcher._signals(["wie ist das hier mit den kleinen kindern", "tagesmutter fuer mein kind"],
                               ["de", "de"], probabilities)
    assert signals.entry[0, entry] == pytest.approx(0.6) and signals.entry[0].sum() == signals.entry[0, entry]
    assert not signals.entry[1].any()  # "Tagesmutter" is a keyword of the Kindertagespflege
    stage = matcher.models.fitted.fast
    assert stage.entry is not None and stage.entry.weights()["entry"] > 0  # learned from the general questions
    moved = offer_scores(stage.offer, stage.entry, signals, False)[0]
    still = offer_scores(stage.offer, stage.entry, replace(signals, entry=np.zeros_like(signals.entry)), False)[0]
    assert moved[entry] > still[entry] and moved[other] == still[other]
