"""Fusing the signals: which topic, which offer in it, and whether anything fits at all.

Three small logistic regressions, fitted on out-of-fold signals of the catalogue's example
questions (training.py), never set by hand:
- the topic scorer weighs the signals per topic; it also learns from the topic-level questions,
  where the keyword lexicon knows more than the offers' examples can teach;
- the offer scorer weighs them per offer;
- the fits scorer decides from the combined scores whether any offer fits.
An offer's score is P(its topic) x its share among the offers of that topic.

Two feature sets: "fast" (keywords, classifier, ages) costs well under a millisecond; "full"
adds the sentence encoder. The fast one answers alone where it is clearly sure (the cascade).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bot.matching.semantic import SemanticFeatures

OFFER_FAST = ("keywords", "keywords_rel", "own_keywords", "classifier", "classifier_rel", "age_fits",
              "age_conflict", "audience_mismatch", "age_unusual")
OFFER_FULL = (*OFFER_FAST, "encoder", "encoder_rel", "encoder_top3", "encoder_text", "encoder_knn", "agreement",
              "probe", "probe_rel")
TOPIC_FAST = ("topic_words", "topic_words_rel", "best_offer_words_rel", "classifier_mass", "classifier_mass_rel",
              "ages_fit_some", "ages_fit_none", "topic_model", "topic_model_rel")
TOPIC_FULL = (*TOPIC_FAST, "encoder_topic", "encoder_topic_rel", "encoder_topic_knn", "probe_mass", "probe_mass_rel")
FITS_FAST = ("score", "margin", "topic", "topic_margin", "classifier_none", "keywords", "answerable", "words",
             "answerable_short", "none_short", "keywords_agree", "topic_model_none")
FITS_FULL = (*FITS_FAST, "encoder", "outside", "encoder_vs_outside", "probe_none")
ENTRY = ("offer", "entry")
ALL_FEATURES = (*OFFER_FULL, *TOPIC_FULL, *FITS_FULL, *ENTRY)
SHORT = 4  # words: a question this short is mostly keywords


@dataclass(frozen=True, slots=True)
class Signals:
    """Everything the signals said about a batch of questions (rows) and offers or topics (columns)."""

    keywords: np.ndarray  # raw keyword votes per offer (its topic's words + its own)
    own: np.ndarray  # the offer's own keywords only
    topic_words: np.ndarray  # per topic: the topic's words only
    strong: np.ndarray  # per row: a word matched as written or as a clear stem
    classifier: np.ndarray  # probabilities: per offer, "nothing fits", per topic (its own words)
    ages: np.ndarray  # per offer: +1 a stated age fits it, -1 none does, 0 no age stated
    mismatch: np.ndarray  # per offer: 1 where the person named is not whom the offer serves
    unusual: np.ndarray  # per offer: 1 where every age stated is unusual for its example questions
    words: np.ndarray  # per row: number of words
    answerable: np.ndarray  # per row: the keyword voter alone would answer (a topic word as written)
    # per offer: of the classifier's probability for the offer's topic, the part no offer of it
    # claims (a general question about the topic), where the offer is an entry offer of the topic
    # (Topic.entry); 0 for the others
    entry: np.ndarray
    semantic: SemanticFeatures | None = None

    def rows(self, index: np.ndarray) -> Signals:
        picked = {name: getattr(self, name)[index] for name in self.__slots__ if name != "semantic"}
        return Signals(**picked, semantic=self.semantic.rows(index) if self.semantic is not None else None)

    def with_semantic(self, semantic: SemanticFeatures) -> Signals:
        return replace(self, semantic=semantic)


def _squash(raw: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-raw / 2.0)


def _relative(values: np.ndarray) -> np.ndarray:
    best = values.max(axis=1, keepdims=True)
    return np.divide(values, best, out=np.zeros_like(values), where=best > 0)


def _log_relative(p: np.ndarray) -> np.ndarray:
    log_p = np.log(np.maximum(p, 1e-9))
    return 1.0 + np.clip(log_p - log_p.max(axis=1, keepdims=True), -8.0, 0.0) / 8.0


def per_topic(values: np.ndarray, topic_of: np.ndarray, topics: int, how: str = "sum") -> np.ndarray:
    """rows x offers -> rows x topics: sum or max over each topic's offers."""
    out = np.zeros((values.shape[0], topics), dtype=np.float32)
    for topic in range(topics):
        mine = topic_of == topic
        if mine.any():
            out[:, topic] = values[:, mine].sum(axis=1) if how == "sum" else values[:, mine].max(axis=1)
    return out


def offer_features(signals: Signals, full: bool) -> np.ndarray:
    """rows x offers x features."""
    offers = signals.keywords.shape[1]
    probability = signals.classifier[:, :offers]
    columns = [
        _squash(signals.keywords),
        _relative(signals.keywords),
        _squash(signals.own),
        probability,
        _log_relative(probability),
        (signals.ages > 0).astype(np.float32),
        (signals.ages < 0).astype(np.float32),
        signals.mismatch,
        signals.unusual,
    ]
    if full:
        semantic = signals.semantic
        assert semantic is not None
        columns += [
            semantic.best,
            semantic.best - semantic.best.max(axis=1, keepdims=True),
            semantic.top3,
            semantic.text,
            semantic.knn,
            # The two learned signals agreeing on an offer is worth more than either alone.
            probability * semantic.knn,
            semantic.probe[:, :offers],
            _log_relative(semantic.probe[:, :offers]),
        ]
    return np.stack(columns, axis=2).astype(np.float32)


def entry_features(offer_p: np.ndarray, signals: Signals) -> np.ndarray:
    """rows x offers x 2: the offer scorer's log-odds, and how much the question looks like a
    general one about the topic the offer is an entry offer of. A scorer apart from the offer
    scorer: the topics' general questions teach only how far an entry offer moves ahead; fitted
    together, they would also teach the offer scorer to trust the other signals less."""
    p = np.clip(offer_p, 1e-6, 1 - 1e-6)
    return np.stack([np.log(p) - np.log1p(-p), signals.entry], axis=2).astype(np.float32)


def offer_scores(offer: Scorer, entry: Scorer | None, signals: Signals, full: bool) -> np.ndarray:
    """rows x offers: how likely each offer is the answer (before the topics are weighed)."""
    offer_p = offer.probability(offer_features(signals, full))
    return offer_p if entry is None else entry.probability(entry_features(offer_p, signals))


def topic_features(signals: Signals, topic_of: np.ndarray, topics: int, full: bool) -> np.ndarray:
    """rows x topics x features."""
    mass = _mass(signals.classifier, topic_of, topics)
    fits = per_topic((signals.ages > 0).astype(np.float32), topic_of, topics, "max")
    conflicts = per_topic((signals.ages < 0).astype(np.float32), topic_of, topics, "sum")
    sizes = np.bincount(topic_of, minlength=topics).astype(np.float32)
    model = _topic_model(signals.classifier, len(topic_of), topics)
    columns = [
        _squash(signals.topic_words),
        _relative(signals.topic_words),
        _relative(per_topic(signals.keywords, topic_of, topics, "max")),
        mass,
        _log_relative(mass),
        fits,
        (conflicts >= np.maximum(sizes, 1)[None, :]).astype(np.float32),
        # The topic model: a topic's mass above sums what its offers' classes share, and several
        # offers that share a question's evidence give their topic less than one sure class does.
        model,
        _log_relative(model),
    ]
    if full:
        semantic = signals.semantic
        assert semantic is not None
        columns += [
            semantic.topic_best,
            semantic.topic_best - semantic.topic_best.max(axis=1, keepdims=True),
            semantic.topic_knn,
        ]
        probe = _mass(semantic.probe, topic_of, topics)
        columns += [probe, _log_relative(probe)]
    return np.stack(columns, axis=2).astype(np.float32)


def _mass(p: np.ndarray, topic_of: np.ndarray, topics: int) -> np.ndarray:
    """rows x (offers, "nothing fits", topics' classes) -> rows x topics: a topic's probability."""
    offers = len(topic_of)
    return per_topic(p[:, :offers], topic_of, topics) + p[:, offers + 1:offers + 1 + topics]


def _topic_model(p: np.ndarray, offers: int, topics: int) -> np.ndarray:
    """rows x topics: the classifier's topic model (after the offers, "nothing fits", the topics' classes)."""
    start = offers + 1 + topics
    return p[:, start:start + topics]


def combine(offer_p: np.ndarray, topic_p: np.ndarray, topic_of: np.ndarray) -> np.ndarray:
    """P(offer) = P(its topic) x its share of its topic's offer scores."""
    topic_share = topic_p / np.maximum(topic_p.sum(axis=1, keepdims=True), 1e-9)
    sums = per_topic(offer_p, topic_of, topic_p.shape[1])
    within = offer_p / np.maximum(sums[:, topic_of], 1e-9)
    return (topic_share[:, topic_of] * within).astype(np.float32)


def question_features(signals: Signals, combined: np.ndarray, topic_p: np.ndarray, full: bool) -> np.ndarray:
    """rows x features, for the decision whether anything fits."""
    ranked = np.sort(combined, axis=1)
    topics = np.sort(topic_p / np.maximum(topic_p.sum(axis=1, keepdims=True), 1e-9), axis=1)
    offers = signals.keywords.shape[1]
    columns = [
        ranked[:, -1],
        ranked[:, -1] - ranked[:, -2],
        topics[:, -1],
        topics[:, -1] - topics[:, -2],
        signals.classifier[:, offers],
        _squash(signals.keywords.max(axis=1)),
        signals.answerable.astype(np.float32),
        np.log1p(signals.words),
        # In a short question a topic word as written says more, and the classifier's "nothing
        # fits" (its bias, with few n-grams to go on) says less, than in a long one.
        signals.answerable * (signals.words <= SHORT),
        signals.classifier[:, offers] * (signals.words <= SHORT),
        # The topic words as written point to the topic the fusion chose.
        signals.answerable * (signals.topic_words.argmax(axis=1) == topic_p.argmax(axis=1)),
        signals.classifier[:, -1],  # the topic model's "nothing fits"
    ]
    if full:
        semantic = signals.semantic
        assert semantic is not None
        best = np.maximum(semantic.best.max(axis=1), semantic.topic_best.max(axis=1))
        columns += [best, semantic.outside, best - semantic.outside, semantic.probe[:, offers]]
    return np.stack(columns, axis=1).astype(np.float32)


class Scorer:
    """A standardised logistic regression: fitted once, then only read. Kept as its numbers
    (means, scales, weights, bias), so that it can be shipped with a catalogue as plain JSON."""

    def __init__(self, features: tuple[str, ...], balanced: bool = False) -> None:
        self.features, self._balanced = features, balanced
        n = len(features)
        self._mean, self._scale, self._coef, self._bias = np.zeros(n), np.ones(n), np.zeros(n), 0.0

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> Scorer:
        scaler = StandardScaler()
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced" if self._balanced else None)
        model.fit(scaler.fit_transform(x), y, sample_weight=weight)
        self._mean, self._scale = scaler.mean_, scaler.scale_
        self._coef, self._bias = model.coef_[0], float(model.intercept_[0])
        return self

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self._mean) / self._scale) @ self._coef + self._bias
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def weights(self) -> dict[str, float]:
        """The fitted weight of each standardised feature, for `ask --explain`."""
        return {name: round(float(w), 3) for name, w in zip(self.features, self._coef, strict=True)}

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self._mean.tolist(), "scale": self._scale.tolist(),
                "coef": self._coef.tolist(), "bias": self._bias}

    @classmethod
    def from_dict(cls, data: dict) -> Scorer:
        scorer = cls(tuple(data["features"]))
        scorer._mean, scorer._scale = np.array(data["mean"]), np.array(data["scale"])
        scorer._coef, scorer._bias = np.array(data["coef"]), float(data["bias"])
        if not len(scorer._mean) == len(scorer._scale) == len(scorer._coef) == len(scorer.features):
            raise ValueError("a scorer's numbers do not match its features")
        return scorer


@dataclass(slots=True)
class Stage:
    """The three scorers of one feature set (fast or full)."""

    offer: Scorer
    topic: Scorer
    fits: Scorer
    threshold: float  # fits probability below which nothing fits
    full: bool
    entry: Scorer | None = None  # the offer scores again, with the topics' entry offers (entry_features)

    def to_dict(self) -> dict:
        return {"offer": self.offer.to_dict(), "topic": self.topic.to_dict(), "fits": self.fits.to_dict(),
                "threshold": self.threshold, "full": self.full, "entry": self.entry.to_dict() if self.entry else None}

    @classmethod
    def from_dict(cls, data: dict) -> Stage:
        entry = Scorer.from_dict(data["entry"]) if data.get("entry") else None
        return cls(Scorer.from_dict(data["offer"]), Scorer.from_dict(data["topic"]), Scorer.from_dict(data["fits"]),
                   float(data["threshold"]), bool(data["full"]), entry)

    def score(self, signals: Signals, topic_of: np.ndarray, topics: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(combined offer scores, topic probabilities, fits probability) per row."""
        offer_p = offer_scores(self.offer, self.entry, signals, self.full)
        topic_p = self.topic.probability(topic_features(signals, topic_of, topics, self.full))
        combined = combine(offer_p, topic_p, topic_of)
        fits = self.fits.probability(question_features(signals, combined, topic_p, self.full))
        return combined, topic_p, fits
