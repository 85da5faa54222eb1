"""Training the ranker from a catalogue: done once per catalogue version, then cached.

The classifier learns from all example questions and the offers' texts; the fusion learns how much
to trust each signal from out-of-fold signals of all example questions (each scored by models
that never saw it): the offers' examples, the topics' general questions and the out-of-scope
ones. Thresholds are chosen on those out-of-fold scores.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.catalogue import Catalogue
from bot.matching.classifier import NONE, NgramClassifier, fit_temperature, softmax
from bot.matching.fusion import (
    ENTRY,
    FITS_FAST,
    FITS_FULL,
    OFFER_FAST,
    OFFER_FULL,
    TOPIC_FAST,
    TOPIC_FULL,
    Scorer,
    Signals,
    Stage,
    combine,
    entry_features,
    offer_features,
    offer_scores,
    question_features,
    topic_features,
)
from bot.matching.probe import Probe
from bot.matching.semantic import OUTSIDE, TOPIC_ONLY

FOLDS = 3
LEXICON_BUNDLE = 10  # topic words per classifier document
TOPIC_CLASS = "__topic__:"  # the classifier's class for a topic's own words
# Fraction of in-scope questions the "nothing fits" decision may turn away on out-of-fold
# scores: every one turned away is a person without an answer, so it stays small. Chosen on
# held-out questions (0.03, 0.02, 0.015): below 0.02 more near misses get an offer than people
# gain one.
MAX_REJECTED = 0.02
# The fast stage answers alone only where its "something fits" is at least this likely; below,
# the encoder decides. Chosen on held-out questions, as the issue asks of thresholds: out of fold
# the fast stage turns away near misses as well as the full one, but near misses it has never
# seen ("a swimming course for my son") it takes for questions, and the encoder does not.
FAST_FITS = 0.6


@dataclass(frozen=True, slots=True)
class Corpus:
    """The example questions (for training and out-of-fold scoring) and the offer texts (for
    the classifier and the encoder's text signal)."""

    questions: tuple[str, ...]
    languages: tuple[str, ...]
    targets: np.ndarray  # offer index; OUTSIDE for out of scope; TOPIC_ONLY for a topic's general question
    topics: np.ndarray  # topic index; -1 for out of scope
    texts: tuple[str, ...]  # title, summary and who of each offer in each language
    text_targets: np.ndarray
    keywords: tuple[str, ...] = ()  # each offer's keywords per language (for the classifier only)
    keyword_targets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # The topics' words (names and synonyms, in bundles), so that the classifier knows a topic's
    # vocabulary even where no example question uses a word ("kreş" for a Kita).
    lexicon: tuple[str, ...] = ()
    lexicon_topics: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    entry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per offer: in its Topic.entry
    offer_topics: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))  # per offer: its topic

    def answers(self, offer_topics: np.ndarray) -> np.ndarray:
        """questions x offers: 1 where the offer answers the question: its own offer; for a
        topic's general question, the topic's entry offers."""
        answers = np.zeros((len(self.targets), len(offer_topics)), dtype=np.int8)
        own = np.flatnonzero(self.targets >= 0)
        answers[own, self.targets[own]] = 1
        general = np.flatnonzero(self.targets == TOPIC_ONLY)
        if len(self.entry):  # a corpus made without entry offers has none
            answers[general] = (offer_topics[None, :] == self.topics[general, None]) & self.entry[None, :]
        return answers

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (*self.questions, *self.languages, *self.texts, *self.keywords, *self.lexicon):
            digest.update(part.encode() + b"\x1f")
        digest.update(self.targets.tobytes() + self.topics.tobytes() + self.text_targets.tobytes() + self.entry.tobytes())
        return digest.hexdigest()[:16]


def corpus(catalogue: Catalogue) -> Corpus:
    offers = list(catalogue.offers)
    topic_index = {t: i for i, t in enumerate(catalogue.topics)}
    questions, languages, targets, topics, texts, text_targets = [], [], [], [], [], []
    keywords, keyword_targets = [], []

    def add(question: str, lang: str, target: int, topic: int) -> None:
        questions.append(question)
        languages.append(lang)
        targets.append(target)
        topics.append(topic)

    for index, ident in enumerate(offers):
        offer = catalogue.offers[ident]
        for lang, text in offer.texts.items():
            for example in text.examples:
                add(example, lang, index, topic_index[offer.topic])
            texts.append(f"{text.title}. {text.summary} {text.who}")
            text_targets.append(index)
            if text.keywords:
                keywords.append(", ".join(text.keywords))
                keyword_targets.append(index)
    lexicon, lexicon_topics = [], []
    for ident, topic in catalogue.topics.items():
        for lang, examples in topic.examples.items():
            for example in examples:
                add(example, lang, TOPIC_ONLY, topic_index[ident])
        for lang, terms in topic.synonyms.items():
            words = [topic.names.get(lang, ""), *terms]
            for start in range(0, len(words), LEXICON_BUNDLE):
                lexicon.append(", ".join(w for w in words[start:start + LEXICON_BUNDLE] if w))
                lexicon_topics.append(topic_index[ident])
    for lang, examples in catalogue.out_of_scope.items():
        for example in examples:
            add(example, lang, OUTSIDE, -1)
    entry = [ident in catalogue.topics[catalogue.offers[ident].topic].entry for ident in offers]
    return Corpus(tuple(questions), tuple(languages), np.array(targets, dtype=np.int32),
                  np.array(topics, dtype=np.int32), tuple(texts), np.array(text_targets, dtype=np.int32),
                  tuple(keywords), np.array(keyword_targets, dtype=np.int32), tuple(lexicon),
                  np.array(lexicon_topics, dtype=np.int32), np.array(entry, dtype=bool),
                  np.array([topic_index[catalogue.offers[ident].topic] for ident in offers], dtype=np.int32))


def folds(data: Corpus) -> np.ndarray:
    """A fold per question, stable across runs and machines. An offer's examples in one language
    are cut into FOLDS runs of consecutive examples, one run per fold: examples were added in
    rounds, each round by other writers, so a run is mostly one writer's. A question is then
    scored by models that saw other writers' questions in its language, as a newcomer's question
    is. Holding out all examples of an offer in a language (as before) made the classifier and the
    nearest examples look weaker than they are with people who write in a language the offer has
    examples in; the fusion trusted them too little (first offer right: 14 more held-out
    questions over all sets with runs)."""
    groups = [f"{target}|{lang}" if target >= 0 else question
              for question, lang, target in zip(data.questions, data.languages, data.targets.tolist(), strict=True)]
    sizes = Counter(groups)
    seen: Counter[str] = Counter()
    fold = np.zeros(len(groups), dtype=np.int32)
    for row, group in enumerate(groups):
        run = seen[group] * FOLDS // sizes[group]
        seen[group] += 1
        fold[row] = (int(hashlib.md5(group.encode()).hexdigest()[:8], 16) + run) % FOLDS
    return fold


def train_classifier(data: Corpus, offer_ids: list[str], topic_ids: list[str], fold: np.ndarray | None = None,
                     temperature: float | None = None, counted: Callable[[], object] | None = None,
                     topic_temperature: float | None = None) -> tuple[NgramClassifier, np.ndarray]:
    """The classifier (offers, "nothing fits", and each topic's own class; beside it a model of
    the topics alone), and out-of-fold probabilities for every question (see `align` for the
    columns; then the topic model's, in `topic_ids` order and "nothing fits"). Without folds:
    only the classifier, with the given temperatures (a catalogue edit, the fusion kept).

    A topic's general questions name no offer. Where the topic has one entry offer, they teach
    its class: that is what a counsellor answers them with, and the classifier learns how people
    ask without naming an offer (rules, costs, worries, choices), which the offers' examples
    rarely say. As the topic's own class, beside its words, they gave the topic but left the
    choice among its offers to phrases that a special offer's examples share with general
    questions ("learn German" in the examples of a course for mothers). Where the topic has
    several entry offers, or none, they teach the topic's own class."""
    labels = question_labels(data, offer_ids, topic_ids)
    rows = len(labels)
    texts = [*data.questions, *data.texts, *data.keywords, *data.lexicon]
    labels += [offer_ids[t] for t in data.text_targets] + [offer_ids[t] for t in data.keyword_targets]
    labels += [TOPIC_CLASS + topic_ids[t] for t in data.lexicon_topics]
    # The topic model's labels: each text's topic (an offer's texts: its topic; out of scope: NONE).
    offer_topic = dict(enumerate(data.offer_topics.tolist())) or {
        t: k for t, k in zip(data.targets.tolist(), data.topics.tolist(), strict=True) if t >= 0}
    topics = [topic_ids[k] if k >= 0 else NONE for k in data.topics.tolist()]
    topics += [topic_ids[offer_topic[t]] for t in (*data.text_targets.tolist(), *data.keyword_targets.tolist())]
    topics += [topic_ids[t] for t in data.lexicon_topics]
    extra = len(data.texts) + len(data.keywords) + len(data.lexicon)
    if fold is None:
        classifier = NgramClassifier.train(texts, labels, temperature=temperature or 1.0, counted=counted,
                                           coarse=topics)[0]
        classifier.coarse_temperature = topic_temperature or 1.0
        return classifier, np.zeros((0, len(offer_ids) + 1))
    everywhere = np.concatenate([fold, np.full(extra, -1, dtype=fold.dtype)])
    classifier, scores, classes, topic_scores = NgramClassifier.train(texts, labels, everywhere, counted=counted,
                                                                      coarse=topics)
    truth = np.array([classes.index(label) for label in labels[:rows]])
    temperature = classifier.temperature = fit_temperature(scores[:rows], truth)
    names, topic_p = classifier.coarse_labels, np.zeros((rows, 0), dtype=np.float32)
    if names:  # none where there is only one topic to tell (NgramClassifier.train)
        topic_truth = np.array([names.index(t) for t in topics[:rows]])
        classifier.coarse_temperature = fit_temperature(topic_scores[:rows], topic_truth)
        topic_p = softmax(topic_scores[:rows], classifier.coarse_temperature)
    return classifier, np.hstack([align(classes, softmax(scores[:rows], temperature), offer_ids, topic_ids),
                                  topic_block(names, topic_p, topic_ids)])


def topic_block(names: Sequence[str], probabilities: np.ndarray, topic_ids: list[str]) -> np.ndarray:
    """The topic model's probabilities as columns: every topic in order, then "nothing fits"."""
    column = {label: i for i, label in enumerate(names)}
    return take_columns(probabilities, np.array([column.get(t, -1) for t in (*topic_ids, NONE)], dtype=np.int64))


def question_labels(data: Corpus, offer_ids: list[str], topic_ids: list[str]) -> list[str]:
    """The class of each example question: its offer, "nothing fits", or for a topic's general
    question the topic's general class (see `general_classes`)."""
    general = general_classes(data, offer_ids, topic_ids)
    return [offer_ids[t] if t >= 0 else NONE if t == OUTSIDE else general[k]
            for t, k in zip(data.targets.tolist(), data.topics.tolist(), strict=True)]


def train_probe(data: Corpus, vectors: np.ndarray, offer_ids: list[str], topic_ids: list[str],
                fold: np.ndarray | None = None, temperature: float | None = None) -> tuple[Probe, np.ndarray]:
    """The encoder's linear head (probe.py) on the example questions' embeddings, and (with
    `fold`) out-of-fold probabilities for every question, in the columns of `align`."""
    labels = question_labels(data, offer_ids, topic_ids)
    probe, scores, classes = Probe.train(vectors, labels, fold, temperature or 1.0)
    if fold is None:
        return probe, np.zeros((0, len(offer_ids) + 1 + len(topic_ids)))
    truth = np.array([classes.index(label) for label in labels])
    probe.temperature = fit_temperature(scores, truth)
    return probe, align(classes, softmax(scores, probe.temperature), offer_ids, topic_ids)


def general_classes(data: Corpus, offer_ids: list[str], topic_ids: list[str]) -> dict[int, str]:
    """Per topic, the classifier's class for its general questions (see `train_classifier`)."""
    entries: dict[int, set[int]] = {k: set() for k in range(len(topic_ids))}
    if len(data.entry):
        for offer, topic in zip(data.targets.tolist(), data.topics.tolist(), strict=True):
            if offer >= 0 and data.entry[offer]:
                entries[topic].add(offer)
    return {k: offer_ids[next(iter(mine))] if len(mine) == 1 else TOPIC_CLASS + topic_ids[k]
            for k, mine in entries.items()}


def align(classes: Sequence[str], probabilities: np.ndarray, offer_ids: list[str], topic_ids: list[str]) -> np.ndarray:
    """Classifier probabilities as columns: every offer in order, "nothing fits", every topic's
    own words in order (a class the catalogue lacks is 0)."""
    return take_columns(probabilities, columns(classes, offer_ids, topic_ids))


def columns(classes: Sequence[str], offer_ids: list[str], topic_ids: list[str]) -> np.ndarray:
    """For `align`: per wanted column, the classifier's column, or -1 where it has none."""
    column = {label: i for i, label in enumerate(classes)}
    wanted = [*offer_ids, NONE, *(TOPIC_CLASS + t for t in topic_ids)]
    return np.array([column.get(ident, -1) for ident in wanted], dtype=np.int64)


def take_columns(probabilities: np.ndarray, index: np.ndarray) -> np.ndarray:
    if probabilities.shape[1] == 0:  # a model that was not trained (one topic alone): every column is 0
        return np.zeros((len(probabilities), len(index)), dtype=np.float32)
    aligned = probabilities[:, np.maximum(index, 0)].astype(np.float32)
    aligned[:, index < 0] = 0.0
    return aligned


@dataclass(slots=True)
class Fitted:
    """The fitted fusion: one stage without the encoder, one with it, and the cascade's bar."""

    fast: Stage
    full: Stage | None
    cascade: float  # the fast stage answers alone when its best offer is at least this likely
    report: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0  # of the classifier's softmax, fitted on its out-of-fold scores
    probe_temperature: float = 1.0  # of the encoder's linear head (probe.py), the same way
    topic_temperature: float = 1.0  # of the classifier's topic model, the same way

    def answers_alone(self, best: np.ndarray, fits: np.ndarray) -> np.ndarray:
        """Where the fast stage may answer without the encoder (if `keywords_agree` too): sure of
        its offer, and sure that something fits."""
        return (best >= self.cascade) & (fits >= max(self.fast.threshold, FAST_FITS))

    def to_dict(self) -> dict:
        return {"fast": self.fast.to_dict(), "full": self.full.to_dict() if self.full else None,
                "cascade": self.cascade, "report": self.report, "temperature": self.temperature,
                "probe_temperature": self.probe_temperature, "topic_temperature": self.topic_temperature}

    @classmethod
    def from_dict(cls, data: dict) -> Fitted:
        return cls(Stage.from_dict(data["fast"]), Stage.from_dict(data["full"]) if data.get("full") else None,
                   float(data["cascade"]), dict(data.get("report") or {}), float(data["temperature"]),
                   float(data.get("probe_temperature", 1.0)), float(data.get("topic_temperature", 1.0)))


def fit_fusion(data: Corpus, signals: Signals, topic_of: np.ndarray, topics: int, has_encoder: bool) -> Fitted:
    """Fit the scorers on out-of-fold `signals` of the corpus' questions."""
    started = time.perf_counter()
    answers = data.answers(topic_of)
    offer_rows = np.flatnonzero(data.targets >= 0)
    answered = np.flatnonzero(answers.any(axis=1))  # the offers' examples; general questions of a topic with entry offers
    inside = data.topics >= 0
    report: dict[str, float] = {}

    def fit_stage(full: bool) -> tuple[Stage, np.ndarray, np.ndarray]:
        name = "full" if full else "fast"
        x = offer_features(signals.rows(offer_rows), full)
        y = np.zeros(x.shape[:2], dtype=np.int8)
        y[np.arange(len(offer_rows)), data.targets[offer_rows]] = 1
        offer = Scorer(OFFER_FULL if full else OFFER_FAST).fit(x.reshape(-1, x.shape[2]), y.reshape(-1))
        entry = None
        if len(answered) > len(offer_rows):
            chosen = signals.rows(answered)
            e = entry_features(offer.probability(offer_features(chosen, full)), chosen)
            entry = Scorer(ENTRY).fit(e.reshape(-1, 2), answers[answered].reshape(-1))
        rows = np.flatnonzero(inside)
        t = topic_features(signals.rows(rows), topic_of, topics, full)
        ty = np.zeros(t.shape[:2], dtype=np.int8)
        ty[np.arange(len(rows)), data.topics[rows]] = 1
        # A topic's general questions weigh as much, in all, as the offers' examples: people ask
        # both kinds, and only the general ones teach where the offers' examples say nothing.
        general = data.targets[rows] == TOPIC_ONLY
        weight = np.where(general, max(1.0, (~general).sum() / max(1, general.sum())), 1.0)
        topic = Scorer(TOPIC_FULL if full else TOPIC_FAST).fit(t.reshape(-1, t.shape[2]), ty.reshape(-1),
                                                               np.repeat(weight, topics))
        offer_p = offer_scores(offer, entry, signals, full)
        topic_p = topic.probability(topic_features(signals, topic_of, topics, full))
        combined = combine(offer_p, topic_p, topic_of)
        q = question_features(signals, combined, topic_p, full)
        fits = Scorer(FITS_FULL if full else FITS_FAST, balanced=True).fit(q, inside.astype(np.int8))
        fit_p = fits.probability(q)
        # The lowest bar that turns away at most MAX_REJECTED of the in-scope questions.
        threshold = float(np.quantile(fit_p[inside], MAX_REJECTED)) if inside.any() else 0.5
        top = combined.argmax(axis=1)
        report[f"{name}_offer1"] = round(float((top[offer_rows] == data.targets[offer_rows]).mean()), 3)
        report[f"{name}_answer1"] = round(float(answers[answered, top[answered]].mean()), 3)
        report[f"{name}_topic1"] = round(float((topic_of[top[inside]] == data.topics[inside]).mean()), 3)
        report[f"{name}_oos_rejected"] = round(float((fit_p[~inside] < threshold).mean()), 3) if (~inside).any() else 0.0
        return Stage(offer, topic, fits, threshold, full, entry), combined, fit_p

    fast, fast_combined, fast_p = fit_stage(False)
    full, cascade = None, 1.01
    if has_encoder:
        full, full_combined, full_p = fit_stage(True)
        agree = keywords_agree(signals, fast_combined, topic_of)
        cascade = _cascade(fast_combined, full_combined, (fast_p >= fast.threshold) & agree, full_p >= full.threshold,
                           data.targets, data.topics, topic_of)
        sure = (fast_combined.max(axis=1) >= cascade) & (fast_p >= max(fast.threshold, FAST_FITS)) & agree
        report["fast_share"] = round(float(sure.mean()), 3)
    report["cascade"] = round(cascade, 3)
    report["questions"] = len(data.questions)
    report["fit_s"] = round(time.perf_counter() - started, 2)
    return Fitted(fast, full, cascade, report)


def keywords_agree(signals: Signals, combined: np.ndarray, topic_of: np.ndarray) -> np.ndarray:
    """Per row: some keyword of the fast stage's best offer is in the question, the keywords
    point to no other topic, and no other offer owns more of the question's words. Otherwise the
    classifier alone is not trusted (it can be sure for surface reasons: "evening" and "work" in
    a question about a Kita's hours, "wo kann ich in Kassel ... lassen" about anything at all);
    the encoder is asked."""
    top = combined.argmax(axis=1)
    rows = np.arange(len(top))
    voted = signals.topic_words.max(axis=1) > 0
    topic_ok = ~voted | (signals.topic_words.argmax(axis=1) == topic_of[top])
    own_top = signals.own[rows, top]
    return topic_ok & (own_top >= signals.own.max(axis=1)) & (signals.keywords[rows, top] > 0)


def _cascade(fast: np.ndarray, full: np.ndarray, fast_fits: np.ndarray, full_fits: np.ndarray,
             targets: np.ndarray, topics: np.ndarray, topic_of: np.ndarray) -> float:
    """The lowest confidence of the fast stage above which it is right as often as the full one
    (the right offer, or the right topic for a general question), measured out of fold."""
    def right(scores: np.ndarray, fits: np.ndarray) -> np.ndarray:
        top = scores.argmax(axis=1)
        offer_ok = np.where(targets >= 0, top == targets, topic_of[top] == topics)
        return np.where(topics >= 0, offer_ok & fits, ~fits)

    fast_right, full_right = right(fast, fast_fits), right(full, full_fits)
    confidence = fast.max(axis=1)
    for bar in np.linspace(0.3, 0.99, 70):
        sure = (confidence >= bar) & fast_fits
        if sure.sum() < 20:
            break
        if fast_right[sure].mean() >= full_right[sure].mean():
            return float(bar)
    return 1.01  # never: the encoder helps everywhere
