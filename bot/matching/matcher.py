"""The matcher: from a question to ranked offers, built once per catalogue, then read-only.

Three signals (matching/lexical.py, classifier.py, encoder.py + semantic.py), fused by fitted
logistic regressions (fusion.py, training.py). The cheap signals answer alone where they are
clearly sure; the sentence encoder runs for the rest. What a person says about ages is never
contradicted: an offer whose sourced ages exclude every age stated ranks below the others.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.catalogue import Catalogue
from bot.matching.classifier import NONE, NgramClassifier
from bot.matching.detect import Detection, LanguageDetector
from bot.matching.encoder import EmbeddingCache, Encoder, load_encoder
from bot.matching.fusion import ALL_FEATURES, Signals, Stage
from bot.matching.lexical import KeywordVoter, Votes, squash
from bot.matching.people import People, read_people
from bot.matching.semantic import ExampleIndex, SemanticFeatures
from bot.matching.training import Corpus, Fitted, corpus, fit_fusion, folds, train_classifier

log = logging.getLogger(__name__)
MODEL_VERSION = "ranker-1"  # change when features or training change: cached models are refitted
# An offer in the district the person named or lives in moves ahead of one that is less than
# this much likelier (in log-odds): where they live is evidence they gave us.
NEARBY_LOGIT = 0.7
SERIOUS = 0.3  # a second topic's best offer joins the first three above this share of the top score
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Match:
    offer: str
    topic: str
    score: float  # 0..100: how likely the offer is the one the person needs


@dataclass(frozen=True, slots=True)
class Result:
    language: str | None
    detection: Detection
    matches: tuple[Match, ...]
    fits: bool
    districts: tuple[str, ...] = ()  # districts the question named or the user lives in
    people: People = field(default_factory=People)
    fast: bool = False  # answered by the cheap signals alone (the encoder was not needed)

    @property
    def category(self) -> str | None:
        return self.matches[0].topic if self.fits and self.matches else None


@dataclass(slots=True)
class _Models:
    key: str
    classifier: NgramClassifier
    fitted: Fitted


class Matcher:
    def __init__(self, catalogue: Catalogue, stopwords: Mapping[str, frozenset[str]],
                 encoder: Encoder | None | str = AUTO, cache_dir: Path | None = None,
                 threshold: float | None = None, threads: int = 1) -> None:
        started = time.perf_counter()
        self.catalogue = catalogue
        self.detector = LanguageDetector(stopwords)
        self.voter = KeywordVoter(catalogue, stopwords)
        self._offers = list(catalogue.offers)
        self._topic_ids = list(catalogue.topics)
        topic_ids = {t: i for i, t in enumerate(self._topic_ids)}
        self._topics = np.array([topic_ids[catalogue.offers[o].topic] for o in self._offers])
        self.encoder = load_encoder(threads) if encoder == AUTO else encoder
        self._corpus = corpus(catalogue)
        self._cache = None
        if self.encoder is not None:
            shipped = Path(catalogue.folder) / "embeddings" / f"{self.encoder.name}.npz" if catalogue.folder else None
            local = cache_dir / f"embeddings-{self.encoder.name}.npz" if cache_dir else None
            self._cache = EmbeddingCache(self.encoder, shipped, local)
        self._index = self._build_index() if self._cache is not None else None
        self.models = self._load_or_train(cache_dir)
        fitted = self.models.fitted
        self.full = self._index is not None and fitted.full is not None
        chosen = fitted.full.threshold if self.full and fitted.full else fitted.fast.threshold
        self.threshold = chosen if threshold is None else threshold
        if self._cache is not None:
            self._cache.save()
        self.build_s = time.perf_counter() - started

    # -- building ----------------------------------------------------------------------
    def _build_index(self) -> ExampleIndex | None:
        assert self._cache is not None
        data = self._corpus
        try:
            questions = self._cache.embed(data.questions, query=True)
            texts = self._cache.embed(data.texts, query=False)
        except Exception as exc:  # noqa: BLE001 - the encoder failed mid-way: rank without it
            log.warning("sentence encoder failed (%s); ranking with keywords and the classifier", exc)
            self.encoder = self._cache = None
            return None
        self._question_vectors = questions
        return ExampleIndex(questions, data.targets, data.topics, texts, data.text_targets, len(self._offers),
                            len(self._topic_ids))

    def _key(self) -> str:
        import sklearn

        encoder = self.encoder.name if self._index is not None and self.encoder else "none"
        features = hashlib.sha256("|".join(ALL_FEATURES).encode()).hexdigest()[:8]
        parts = (MODEL_VERSION, features, sklearn.__version__, encoder, self.catalogue.version,
                 self._corpus.fingerprint(), f"{sys.version_info.major}.{sys.version_info.minor}")
        return "-".join(parts)

    def _load_or_train(self, cache_dir: Path | None) -> _Models:
        key = self._key()
        path = cache_dir / f"ranker-{self.catalogue.municipality.lower()}.pkl" if cache_dir else None
        if path is not None and path.is_file():
            try:
                with path.open("rb") as handle:
                    models = pickle.load(handle)  # noqa: S301 - our own file in our own data folder
                if isinstance(models, _Models) and models.key == key:
                    return models
            except Exception as exc:  # noqa: BLE001 - unreadable or from another version: train again
                log.info("ranker cache %s not usable (%s); training", path, exc)
        started = time.perf_counter()
        models = self._train(key)
        log.info("ranker trained in %.1f s on %d example questions: %s", time.perf_counter() - started,
                 models.fitted.report.get("questions", 0), models.fitted.report)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".tmp")
                with temporary.open("wb") as handle:
                    pickle.dump(models, handle, protocol=pickle.HIGHEST_PROTOCOL)
                temporary.replace(path)
            except OSError as exc:
                log.warning("cannot keep the trained ranker in %s (%s); it is trained again at each start", path, exc)
        return models

    def _train(self, key: str) -> _Models:
        data = self._corpus
        fold = folds(data.questions)
        classifier, probabilities = train_classifier(data, self._offers, fold)
        semantic = None
        if self._index is not None:
            semantic = self._out_of_fold_semantic(fold)
        signals = self._signals(list(data.questions), list(data.languages), probabilities, (), semantic)
        fitted = fit_fusion(data, signals, self._topics, len(self._topic_ids), semantic is not None)
        return _Models(key, classifier, fitted)

    def _out_of_fold_semantic(self, fold: np.ndarray):
        assert self._index is not None
        parts = []
        vectors = self._question_vectors
        for start in range(0, len(vectors), 1000):
            rows = slice(start, start + 1000)
            excluded = fold[rows, None] == fold[None, :]
            parts.append(self._index.features(vectors[rows], excluded))
        return SemanticFeatures.concatenate(parts)

    # -- signals -----------------------------------------------------------------------
    def _aligned(self, classifier: NgramClassifier, texts: Sequence[str]) -> np.ndarray:
        """Classifier probabilities with columns in offer order, "nothing fits" last."""
        raw = classifier.proba(texts)
        out = np.zeros((len(texts), len(self._offers) + 1), dtype=np.float32)
        column = {label: i for i, label in enumerate(classifier.labels)}
        for j, ident in enumerate([*self._offers, NONE]):
            if ident in column:
                out[:, j] = raw[:, column[ident]]
        return out

    def _signals(self, texts: list[str], languages: list[str | None], probabilities: np.ndarray,
                 votes: Sequence[Votes] = (), semantic=None, people: Sequence[People] = ()) -> Signals:
        offers = self._offers
        votes = list(votes) or [self.voter.votes(t, lang) for t, lang in zip(texts, languages, strict=True)]
        people = list(people) or [read_people(t) for t in texts]
        keywords = np.array([[v.offers.get(o, 0.0) for o in offers] for v in votes], dtype=np.float32)
        own = np.array([[v.own.get(o, 0.0) for o in offers] for v in votes], dtype=np.float32)
        topic_words = np.array([[v.topics.get(t, 0.0) for t in self._topic_ids] for v in votes], dtype=np.float32)
        ages = np.zeros((len(texts), len(offers)), dtype=np.float32)
        mismatch = np.zeros_like(ages)
        for row, person in enumerate(people):
            for column, ident in enumerate(offers):
                offer = self.catalogue.offers[ident]
                if person.ages:
                    ages[row, column] = 1.0 if any(offer.fits_age(a) for a in person.ages) else -1.0
                elif (person.child and offer.audience == "adults" and not person.other_adult) or \
                        (person.other_adult and not person.child and offer.audience == "children"):
                    mismatch[row, column] = 1.0
        words = np.array([len(t.split()) for t in texts], dtype=np.float32)
        strong = np.array([v.strong for v in votes], dtype=bool)
        answerable = np.array([self.voter.answerable(v) for v in votes], dtype=bool)
        return Signals(keywords, own, topic_words, strong, probabilities, ages, mismatch, words, answerable, semantic)

    # -- questions ---------------------------------------------------------------------
    def match(self, text: str, lang: str | None = None, limit: int = 5, districts: tuple[str, ...] = ()) -> Result:
        """Rank offers for `text`; offers in the named (or given) districts come first among near-equals."""
        return self.match_many([text], lang, limit, districts)[0]

    def match_many(self, texts: Sequence[str], lang: str | None = None, limit: int = 5,
                   districts: tuple[str, ...] = ()) -> list[Result]:
        """Many questions at once: the encoder embeds those that need it in one batch."""
        if not texts:
            return []
        detections = [self.detector.detect(t) for t in texts]
        languages = [lang or d.language for d in detections]
        votes = [self.voter.votes(t, language) for t, language in zip(texts, languages, strict=True)]
        people = [read_people(t) for t in texts]
        probabilities = self._aligned(self.models.classifier, texts)
        signals = self._signals(list(texts), languages, probabilities, votes, people=people)
        fitted = self.models.fitted
        topics = len(self._topic_ids)
        fused, _, fits = fitted.fast.score(signals, self._topics, topics)
        threshold = np.full(len(texts), self.threshold if not self.full else fitted.fast.threshold)
        fast = np.ones(len(texts), dtype=bool)
        if self.full:
            fast = (fused.max(axis=1) >= fitted.cascade) & (fits >= fitted.fast.threshold)
            slow = np.flatnonzero(~fast)
            if len(slow):
                full = self._full(signals.rows(slow), [texts[i] for i in slow])
                if full is not None:
                    fused[slow], fits[slow] = full
                    threshold[slow] = self.threshold
                else:
                    fast[:] = True
        results = []
        for row, text in enumerate(texts):
            near = tuple(dict.fromkeys((*self.voter.districts_in(text), *districts)))
            ranked = self._rank(fused[row], signals.ages[row], near)
            matches = tuple(Match(o, self.catalogue.offers[o].topic, round(100 * float(s), 2))
                            for o, s in ranked[:limit])
            results.append(Result(languages[row], detections[row], matches, bool(fits[row] >= threshold[row]),
                                  near, people[row], bool(fast[row])))
        return results

    def _full(self, signals: Signals, texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        assert self.encoder is not None and self._index is not None
        try:
            vectors = self.encoder.embed(texts, query=True)
        except Exception as exc:  # noqa: BLE001 - rank with the fast stage rather than fail the person
            log.warning("sentence encoder failed (%s); answering with keywords and the classifier", exc)
            return None
        stage = self.models.fitted.full
        assert stage is not None
        combined, _, fits = stage.score(signals.with_semantic(self._index.features(vectors)), self._topics,
                                        len(self._topic_ids))
        return combined, fits

    def _rank(self, scores: np.ndarray, ages: np.ndarray, near: tuple[str, ...]) -> list[tuple[str, float]]:
        """Offers by fused score; an offer no stated age fits goes below all others; an offer
        near the person gains a little. Exact ties fall to the offer id, never to file order."""
        logit = np.log(np.maximum(scores, 1e-9)) - np.log(np.maximum(1 - scores, 1e-9))
        keyed = []
        for column, ident in enumerate(self._offers):
            offer = self.catalogue.offers[ident]
            bonus = NEARBY_LOGIT if near and any(d in offer.districts for d in near) else 0.0
            keyed.append((ages[column] < 0, -(logit[column] + bonus), ident, float(scores[column])))
        keyed.sort()
        ranked = [(ident, score) for _, _, ident, score in keyed]
        return _diversify(ranked, self.catalogue)

    # -- editors -----------------------------------------------------------------------
    def districts_in(self, text: str) -> tuple[str, ...]:
        return self.voter.districts_in(text)

    def explain(self, text: str, lang: str | None = None, top: int = 4) -> dict:
        """Each signal's favourite offers and the fused result, so an editor sees why."""
        result = self.match(text, lang)
        language = result.language
        votes = self.voter.votes(text, language)
        probabilities = self._aligned(self.models.classifier, [text])[0]
        signal = {
            "keywords": sorted(((o, squash(s)) for o, s in votes.offers.items()), key=lambda x: -x[1])[:top],
            "classifier": sorted(((o, round(100 * float(p), 1)) for o, p in
                                  zip([*self._offers, "nothing fits"], probabilities, strict=True)),
                                 key=lambda x: -x[1])[:top],
        }
        if self.encoder is not None and self._index is not None:
            semantic = self._index.features(self.encoder.embed([text], query=True))
            signal["encoder"] = sorted(((o, round(100 * float(s), 1)) for o, s in zip(self._offers, semantic.best[0],
                                                                                       strict=True)),
                                       key=lambda x: -x[1])[:top]
            signal["encoder: closest out-of-scope example"] = [("", round(100 * float(semantic.outside[0]), 1))]
        fitted = self.models.fitted
        stage: Stage = fitted.full if not result.fast and fitted.full else fitted.fast
        weights = {"offer": stage.offer.weights(), "topic": stage.topic.weights(), "fits": stage.fits.weights()}
        return {"result": result, "signals": signal, "words": self.voter.explain(text, language),
                "weights": weights, "threshold": self.threshold, "report": fitted.report}


def _diversify(ranked: list[tuple[str, float]], catalogue: Catalogue) -> list[tuple[str, float]]:
    """Keep the best offer first, and put the best of a second topic among the first three
    when it is a serious contender: the question may be about either."""
    if len(ranked) < 3:
        return ranked
    top_topic = catalogue.offers[ranked[0][0]].topic
    for index, item in enumerate(ranked):
        if catalogue.offers[item[0]].topic != top_topic:
            if index > 1 and item[1] >= SERIOUS * ranked[0][1]:
                return [ranked[0], ranked[1], item, *ranked[2:index], *ranked[index + 1:]]
            break
    return ranked


__all__ = ["Corpus", "Match", "Matcher", "Result"]
