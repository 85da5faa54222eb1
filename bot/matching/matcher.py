"""The matcher: from a question to ranked offers, built once per catalogue, then read-only.

Three signals (matching/lexical.py, classifier.py, encoder.py + semantic.py), fused by fitted
logistic regressions (fusion.py, training.py). The cheap signals answer alone where they are
clearly sure; the sentence encoder runs for the rest. What a person says about ages is never
contradicted: an offer whose sourced ages exclude every age stated ranks below the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from bot.catalogue import Catalogue
from bot.catalogue.model import SCHOOL_AGE_END
from bot.matching.classifier import NgramClassifier
from bot.matching.detect import Detection, LanguageDetector, LatinGuess
from bot.matching.encoder import EmbeddingCache, Encoder, load_encoder
from bot.matching.fusion import ALL_FEATURES, Signals, Stage, per_topic
from bot.matching.lexical import KeywordVoter, Votes, squash
from bot.matching.normalise import tokens
from bot.matching.people import People, read_people, unusual, usual_ages
from bot.matching.probe import Probe
from bot.matching.romanised import catalogue_words, in_own_script
from bot.matching.semantic import ExampleIndex, SemanticFeatures
from bot.matching.training import (
    Corpus,
    Fitted,
    columns,
    corpus,
    fit_fusion,
    folds,
    keywords_agree,
    take_columns,
    topic_block,
    train_classifier,
    train_probe,
)

log = logging.getLogger(__name__)
MODEL_VERSION = "ranker-48"  # change when features or training change: cached models are refitted
# An offer in the district the person named or lives in moves ahead of one of the same topic that
# is less than this much likelier (in log-odds): where they live is evidence they gave us.
NEARBY_LOGIT = 0.7
SERIOUS = 0.15  # a second topic's best offer joins the first three above this share of the top score (held-out: 0.3, 0.15)
RECENT = 2048  # answers kept for repeated questions and batches
FUSION_FILE = "ranker-fusion.json"  # the fitted fusion a catalogue ships (its weights per feature)
SHOWN_MAX = 50  # offers kept per answer (the "more" list of the engine); the rest is never shown
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Match:
    offer: str
    topic: str
    score: float  # 0..100: how likely the offer is the one the person needs
    fits_person: bool = True  # False: an age the person stated is outside the offer's ages


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


# Trained rankers and fitted fusions of this process, by key: a reload or a second matcher for
# the same catalogue (tests, the 100x benchmark) need not train again.
_TRAINED: dict[str, _Models] = {}
_FUSIONS: dict[str, Fitted] = {}


T = TypeVar("T")


def _after(event: threading.Event, work: Callable[..., T], *args: object) -> T:
    event.wait()
    return work(*args)


def _read_pickle(path: Path | None) -> object:
    if path is None or not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - our own file in our own data folder
    except Exception as exc:  # noqa: BLE001 - unreadable or from another version: train again
        log.info("ranker cache %s not usable (%s); training", path, exc)
        return None


def _write_pickle(path: Path | None, models: _Models) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            pickle.dump(models, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)
    except OSError as exc:
        log.warning("cannot keep the trained ranker in %s (%s); it is trained again at each start", path, exc)


@dataclass(slots=True)
class _Models:
    key: str
    classifier: NgramClassifier
    fitted: Fitted
    languages: LatinGuess  # the language of questions in Latin letters, romanised ones too
    usual: np.ndarray  # per offer, the ages its example questions usually state (people.usual_ages)
    probe: Probe | None = None  # the encoder's linear head; None without the encoder


class Matcher:
    def __init__(self, catalogue: Catalogue, stopwords: Mapping[str, frozenset[str]],
                 encoder: Encoder | None | str = AUTO, cache_dir: Path | None = None,
                 threshold: float | None = None, threads: int = 1, models: _Models | None = None,
                 keep_embeddings: bool = False, fresh: bool = False) -> None:
        started = time.perf_counter()
        self.catalogue = catalogue
        self.voter = KeywordVoter(catalogue, stopwords)
        self.function_words = frozenset().union(*stopwords.values())  # of all languages: people mix them
        self._offers = list(catalogue.offers)
        self._topic_ids = list(catalogue.topics)
        topic_ids = {t: i for i, t in enumerate(self._topic_ids)}
        self._topics = np.array([topic_ids[catalogue.offers[o].topic] for o in self._offers])
        offers = [catalogue.offers[o] for o in self._offers]
        # Whom each offer serves, as arrays: a question's ages are checked against all at once.
        self._low = np.array([o.ages[0] if o.ages else 0 for o in offers], dtype=np.float32)
        self._high = np.array([(o.ages[1] + 1 if o.ages[1] is not None else np.inf) if o.ages else np.inf
                               for o in offers], dtype=np.float32)
        self._ranged = np.array([o.ages is not None for o in offers])
        self._adults = np.array([o.audience == "adults" for o in offers])
        self._children = np.array([o.audience == "children" for o in offers])
        # Offers for adults of any age: for adults, or from an adult age on with no upper limit.
        self._grown_ups = self._adults & ~self._ranged | (self._ranged & (self._low >= SCHOOL_AGE_END) & np.isinf(self._high))
        self._district_sets = [frozenset(o.districts) for o in offers]
        self._names = np.array(self._offers)
        # Answers to recent questions: a batch (ask --json -) is matched at once, with the encoder
        # embedding in one go, and then served from here; the same question twice costs nothing.
        self._recent: OrderedDict[tuple, Result] = OrderedDict()
        self._columns: tuple[NgramClassifier, np.ndarray] | None = None
        self._probe_columns: tuple[Probe, np.ndarray] | None = None
        self.encoder = load_encoder(threads) if encoder == AUTO else encoder
        self._corpus = corpus(catalogue)
        self._latin_words = catalogue_words(catalogue)
        # The example questions as the encoder reads them, and as the classifier does (see below).
        self._native = self._for_encoder(self._corpus.questions, self._corpus.languages)
        self._classifier_corpus = replace(self._corpus, questions=tuple(_beside(self._corpus.questions, self._native)))
        self._cache = None
        if self.encoder is not None:
            shipped = Path(catalogue.folder) / "embeddings" / f"{self.encoder.name}.npz" if catalogue.folder else None
            local = cache_dir / f"embeddings-{self.encoder.name}.npz" if cache_dir else None
            self._cache = EmbeddingCache(self.encoder, shipped, local)
        self._index = self._build_index() if self._cache is not None else None
        if self._cache is not None and not keep_embeddings:
            self._cache.drop()  # the index holds what is needed: the per-text copies would only raise the peak
        self.models = models or self._load_or_train(cache_dir, fresh)
        self._question_vectors = None  # for training only: freed before the detector's models load (the peak)
        self.detector = LanguageDetector(stopwords, self.models.languages)
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
            questions = self._cache.embed(self._native, query=True)
            texts = self._cache.embed(data.texts, query=False)
        except Exception as exc:  # noqa: BLE001 - the encoder failed mid-way: rank without it
            log.warning("sentence encoder failed (%s); ranking with keywords and the classifier", exc)
            self.encoder = self._cache = None
            return None
        self._question_vectors: np.ndarray | None = questions
        return ExampleIndex(questions, data.targets, data.topics, texts, data.text_targets, len(self._offers),
                            len(self._topic_ids))

    def _for_encoder(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[str]:
        """The texts as the encoder reads them best: Russian, Ukrainian and Bulgarian written in
        Latin letters in Cyrillic, Arabic and Persian in Arabic script (romanised.py; the
        catalogue's German and English words kept)."""
        return [in_own_script(t, lang, self._latin_words) for t, lang in zip(texts, languages, strict=True)]

    def _for_classifier(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[str]:
        """A romanised question with its own script beside it: the classifier then reads its n-grams
        as those of the many examples written in that script."""
        return _beside(texts, self._for_encoder(texts, languages))

    def _fusion_key(self) -> str:
        """What a fitted fusion depends on: the features, their code, the encoder being there
        (not the library versions: it is kept as plain numbers)."""
        encoder = self.encoder.name if self._index is not None and self.encoder else "none"
        features = hashlib.sha256("|".join(ALL_FEATURES).encode()).hexdigest()[:8]
        return "-".join((MODEL_VERSION, features, encoder))

    def _key(self) -> str:
        """What the whole ranker depends on: the fusion, and everything of the catalogue it reads
        (questions, texts, keywords, topics' words, ages), but not phone numbers or addresses."""
        digest = hashlib.sha256(self._corpus.fingerprint().encode())
        for topic in self.catalogue.topics.values():
            digest.update(repr(sorted(topic.synonyms.items())).encode())
        digest.update(repr(sorted(self.catalogue.false_friends.items())).encode())
        for ident, offer in self.catalogue.offers.items():
            digest.update(repr((ident, offer.topic, offer.ages, offer.audience, offer.districts)).encode())
        import sklearn  # the pickled classifier depends on it

        return f"{self._fusion_key()}-{sklearn.__version__}-{sys.version_info[0]}.{sys.version_info[1]}-" \
               f"{digest.hexdigest()[:16]}"

    def _load_or_train(self, cache_dir: Path | None, fresh: bool) -> _Models:
        """The trained ranker, from the fastest place that has it: this process (a reload, a
        test), the data folder, or a training. When only the catalogue changed, the fusion
        fitted before still holds (its weights are per feature, not per offer): only the
        classifier is trained again, in seconds; a catalogue ships its fitted fusion (`embed`),
        so that a fresh installation trains only that too. `fresh` fits everything anew."""
        key, fusion_key = self._key(), self._fusion_key()
        if key in _TRAINED and not fresh:
            return _TRAINED[key]
        path = cache_dir / f"ranker-{self.catalogue.municipality.lower()}.pkl" if cache_dir else None
        cached = None if fresh else _read_pickle(path)
        if isinstance(cached, _Models) and cached.key == key:
            _TRAINED[key] = cached
            return cached
        # The fusion this process fitted or read, else the one the catalogue ships (fitted by
        # `embed` for its current examples), else the one cached for an earlier catalogue.
        fitted = None if fresh else _FUSIONS.get(fusion_key) or self._shipped_fusion(fusion_key)
        if fitted is None and isinstance(cached, _Models) and cached.key.startswith(fusion_key):
            fitted = cached.fitted
        started = time.perf_counter()
        # The language guesser and the people in the examples do not depend on the classifier:
        # they are made in threads while its SVMs train (liblinear releases the interpreter lock,
        # so the Python work shares the cores with it), once its n-grams are counted (before,
        # they would only take turns with the counting for the interpreter lock).
        data = self._corpus
        counted = threading.Event()
        with ThreadPoolExecutor(max_workers=2) as pool:
            latin = pool.submit(_after, counted, LatinGuess, data.questions, data.languages)
            people = pool.submit(_after, counted, lambda: [read_people(q) for q in data.questions])
            try:
                models = self._train_with(key, fitted, counted.set, latin, people)
            finally:
                counted.set()  # the threads end even where training failed
        if fitted is not None:
            log.info("ranker: classifier trained again in %.1f s; the fitted fusion is kept", time.perf_counter() - started)
        else:
            log.info("ranker trained in %.1f s on %d example questions: %s", time.perf_counter() - started,
                     models.fitted.report.get("questions", 0), models.fitted.report)
        _TRAINED[key] = models
        _FUSIONS[fusion_key] = models.fitted
        while len(_TRAINED) > 4:
            _TRAINED.pop(next(iter(_TRAINED)))
        _write_pickle(path, models)
        return models

    def _train_with(self, key: str, fitted: Fitted | None, counted: Callable[[], object],
                    latin: Future[LatinGuess], read: Future[list[People]]) -> _Models:
        """The classifiers, with the given fusion (a catalogue edit), or with a fusion fitted anew."""
        data = self._corpus
        if fitted is not None:
            classifier = train_classifier(self._classifier_corpus, self._offers, self._topic_ids,
                                          temperature=fitted.temperature, counted=counted,
                                          topic_temperature=fitted.topic_temperature)[0]
            probe = None
            if self._question_vectors is not None:
                probe = train_probe(data, self._question_vectors, self._offers, self._topic_ids,
                                    temperature=fitted.probe_temperature)[0]
            return _Models(key, classifier, fitted, latin.result(),
                           usual_ages(read.result(), data.targets, len(self._offers)), probe)
        fold = folds(data)
        classifier, probabilities = train_classifier(self._classifier_corpus, self._offers, self._topic_ids, fold,
                                                     counted=counted)
        semantic = probe = None
        if self._index is not None and self._question_vectors is not None:
            probe, probe_p = train_probe(data, self._question_vectors, self._offers, self._topic_ids, fold)
            semantic = self._out_of_fold_semantic(fold, probe_p)
        people = read.result()
        # Each question's usual-ages signal from the examples of the other folds only.
        rare = np.zeros((len(people), len(self._offers)), dtype=np.float32)
        for k in np.unique(fold):
            mine = np.flatnonzero(fold == k)
            ranges = usual_ages([people[i] for i in np.flatnonzero(fold != k)], data.targets[fold != k],
                                len(self._offers))
            rare[mine] = unusual([people[i] for i in mine], ranges)
        signals = self._signals(list(data.questions), list(data.languages), probabilities, (), semantic, people, rare)
        fitted = fit_fusion(data, signals, self._topics, len(self._topic_ids), semantic is not None)
        fitted.temperature, fitted.topic_temperature = classifier.temperature, classifier.coarse_temperature
        fitted.probe_temperature = probe.temperature if probe is not None else 1.0
        return _Models(key, classifier, fitted, latin.result(), usual_ages(people, data.targets, len(self._offers)),
                       probe)

    def _out_of_fold_semantic(self, fold: np.ndarray, probe: np.ndarray) -> SemanticFeatures:
        assert self._index is not None
        parts = []
        vectors = self._question_vectors
        assert vectors is not None
        for start in range(0, len(vectors), 1000):
            rows = slice(start, start + 1000)
            excluded = fold[rows, None] == fold[None, :]
            parts.append(self._index.features(vectors[rows], excluded, probe[rows]))
        return SemanticFeatures.concatenate(parts)

    # -- signals -----------------------------------------------------------------------
    def _aligned(self, classifier: NgramClassifier, texts: Sequence[str]) -> np.ndarray:
        """Classifier probabilities: offers in order, "nothing fits", the topics' words, then the
        topic model's topics in order and its "nothing fits" (`training.topic_block`)."""
        if self._columns is None or self._columns[0] is not classifier:  # computed once per classifier
            self._columns = (classifier, columns(classifier.labels, self._offers, self._topic_ids))
        p, topics = classifier.proba_both(texts)
        return np.hstack([take_columns(p, self._columns[1]), topic_block(classifier.coarse_labels, topics,
                                                                          self._topic_ids)])

    def _signals(self, texts: list[str], languages: list[str | None], probabilities: np.ndarray,
                 votes: Sequence[Votes] = (), semantic=None, people: Sequence[People] = (),
                 rare: np.ndarray | None = None) -> Signals:
        offers = self._offers
        votes = list(votes) or [self.voter.votes(t, lang) for t, lang in zip(texts, languages, strict=True)]
        people = list(people) or [read_people(t) for t in texts]
        keywords = np.array([[v.offers.get(o, 0.0) for o in offers] for v in votes], dtype=np.float32)
        own = np.array([[v.own.get(o, 0.0) for o in offers] for v in votes], dtype=np.float32)
        topic_words = np.array([[v.topics.get(t, 0.0) for t in self._topic_ids] for v in votes], dtype=np.float32)
        ages = np.zeros((len(texts), len(offers)), dtype=np.float32)
        mismatch = np.zeros_like(ages)
        for row, person in enumerate(people):
            if person.ages:
                fits = np.zeros(len(offers), dtype=bool)
                for age in person.ages:  # the same rule as Offer.fits_age, for all offers at once
                    fits |= np.where(self._ranged, (self._low <= age) & (age < self._high),
                                     ~(self._adults & (age < SCHOOL_AGE_END)))
                # A named child's age does not contradict an offer for adults: the one who writes
                # is an adult and may ask for themself ("my kids are 2 and 5, I want to learn German").
                # For those offers the question counts as one that states no age.
                grown = self._grown_ups if person.child else np.zeros(len(offers), dtype=bool)
                ages[row] = np.where(fits, 1.0, np.where(grown, 0.0, -1.0))
                if not person.other_adult:
                    mismatch[row] = grown & ~fits
            elif person.child and not person.other_adult:
                mismatch[row] = self._adults
            elif person.other_adult and not person.child:
                mismatch[row] = self._children
        words = np.array([len(tokens(t)) for t in texts], dtype=np.float32)  # words, not stray symbols
        strong = np.array([v.strong for v in votes], dtype=bool)
        answerable = np.array([self.voter.answerable(v) for v in votes], dtype=bool)
        if rare is None:
            rare = unusual(people, self.models.usual)
        general = probabilities[:, len(offers) + 1:len(offers) + 1 + len(self._topic_ids)]  # the topics' own classes
        mass = general + per_topic(probabilities[:, :len(offers)], self._topics, len(self._topic_ids))
        share = general / np.maximum(mass, 1e-9)  # of the topic's probability, the part no offer claims
        # A question that names another offer of the topic by its own keywords is not general.
        entry_offer = self._corpus.entry
        named = per_topic(own * ~entry_offer, self._topics, len(self._topic_ids), "max") > 0
        entry = share[:, self._topics] * entry_offer * ~named[:, self._topics]
        return Signals(keywords, own, topic_words, strong, probabilities, ages, mismatch, rare, words, answerable,
                       entry.astype(np.float32), semantic)

    # -- questions ---------------------------------------------------------------------
    def match(self, text: str, lang: str | None = None, limit: int = 5, districts: tuple[str, ...] = ()) -> Result:
        """Rank offers for `text`; offers in the named (or given) districts come first among near-equals."""
        known = self._recent.get((text, lang, limit, districts))
        return known if known is not None else self.match_many([text], lang, limit, districts)[0]

    def match_many(self, texts: Sequence[str], lang: str | None = None, limit: int = 5,
                   districts: tuple[str, ...] = ()) -> list[Result]:
        """Many questions at once: the encoder embeds those that need it in one batch."""
        if not texts:
            return []
        detections = [self.detector.detect(t) for t in texts]
        languages = [lang or d.language for d in detections]
        votes = [self.voter.votes(t, language) for t, language in zip(texts, languages, strict=True)]
        people = [read_people(t) for t in texts]
        # The language a question is written in, not the one the person chose to be answered in:
        # a German question from a Russian speaker stays German.
        written = [d.language for d in detections]
        probabilities = self._aligned(self.models.classifier, self._for_classifier(texts, written))
        signals = self._signals(list(texts), languages, probabilities, votes, people=people)
        fitted = self.models.fitted
        topics = len(self._topic_ids)
        fused, _, fits = fitted.fast.score(signals, self._topics, topics)
        threshold = np.full(len(texts), self.threshold if not self.full else fitted.fast.threshold)
        fast = np.ones(len(texts), dtype=bool)
        if self.full:
            fast = fitted.answers_alone(fused.max(axis=1), fits) & keywords_agree(signals, fused, self._topics)
            slow = np.flatnonzero(~fast)
            if len(slow):
                full = self._full(signals.rows(slow), self._for_encoder([texts[i] for i in slow],
                                                                        [written[i] for i in slow]))
                if full is not None:
                    fused[slow], fits[slow] = full
                    threshold[slow] = self.threshold
                else:
                    fast[:] = True
        results = []
        for row, text in enumerate(texts):
            near = tuple(dict.fromkeys((*self.voter.districts_in(text), *districts)))
            _likeliest_topic_first(fused[row], self._topics, topics)
            named = _named(signals, row)
            if named is not None:  # it takes the first place and the score of the ranker's first
                best = int(fused[row].argmax())
                fused[row, [named, best]] = fused[row, [best, named]]
            ranked = self._rank(fused[row], signals.ages[row], near)
            matches = tuple(Match(o, self.catalogue.offers[o].topic, round(100 * float(s), 2), ok)
                            for o, s, ok in ranked[:limit])
            results.append(Result(languages[row], detections[row], matches, bool(fits[row] >= threshold[row]),
                                  near, people[row], bool(fast[row])))
            self._recent[(text, lang, limit, districts)] = results[-1]
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
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
        combined, _, fits = stage.score(signals.with_semantic(self._semantic(vectors)), self._topics,
                                        len(self._topic_ids))
        return combined, fits

    def _semantic(self, vectors: np.ndarray) -> SemanticFeatures:
        assert self._index is not None
        probe = self.models.probe
        if probe is None:
            return self._index.features(vectors)
        if self._probe_columns is None or self._probe_columns[0] is not probe:  # once per head
            self._probe_columns = (probe, columns(probe.labels, self._offers, self._topic_ids))
        return self._index.features(vectors, probe=take_columns(probe.proba(vectors), self._probe_columns[1]))

    def _rank(self, scores: np.ndarray, ages: np.ndarray, near: tuple[str, ...]) -> list[tuple[str, float, bool]]:
        """Offers by fused score; an offer no stated age fits goes below all others; an offer
        near the person gains a little. Exact ties fall to the offer id, never to file order."""
        logit = np.log(np.maximum(scores, 1e-9)) - np.log(np.maximum(1 - scores, 1e-9))
        if near:  # only within the best offer's topic: a place nearby is no answer to another need
            nearby = np.array([bool(places & set(near)) for places in self._district_sets])
            logit = logit + NEARBY_LOGIT * (nearby & (self._topics == self._topics[int(scores.argmax())]))
        # Conflicting offers last, then by score; an exact tie falls to the id, never to file order.
        order = np.lexsort((self._names, -logit, ages < 0))
        ranked = [(self._offers[i], float(scores[i]), bool(ages[i] >= 0)) for i in order[:SHOWN_MAX]]
        return _diversify(ranked, self.catalogue)

    def _shipped_fusion(self, key: str) -> Fitted | None:
        path = Path(self.catalogue.folder) / FUSION_FILE if self.catalogue.folder else None
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != key:
                log.info("%s was fitted for %s, not %s: not used", path, data.get("key"), key)
                return None
            return Fitted.from_dict(data["fitted"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s is not usable (%s): not used", path, exc)
            return None

    # -- editors -----------------------------------------------------------------------
    def ship(self) -> list[Path]:
        """Write what a fresh installation would otherwise compute, into the catalogue folder
        (for `embed`): the embeddings of all its questions and texts, and the fitted fusion."""
        if not self.catalogue.folder:
            return []
        written = []
        if self._cache is not None:
            path = Path(self.catalogue.folder) / "embeddings" / f"{self._cache.encoder.name}.npz"
            questions = self._native
            self._cache.export(path, questions, True, self._corpus.texts)
            written.append(path)
        path = Path(self.catalogue.folder) / FUSION_FILE
        data = {"key": self._fusion_key(), "fitted": self.models.fitted.to_dict()}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return [*written, path]

    def districts_in(self, text: str) -> tuple[str, ...]:
        return self.voter.districts_in(text)

    def explain(self, text: str, lang: str | None = None, top: int = 4) -> dict:
        """Each signal's favourite offers and the fused result, so an editor sees why."""
        result = self.match(text, lang)
        language = result.language
        votes = self.voter.votes(text, language)
        written = [self.detector.detect(text).language]
        probabilities = self._aligned(self.models.classifier, self._for_classifier([text], written))[0]
        kept = len(self._offers) + 1 + len(self._topic_ids)  # then the topic model's columns
        topic_model = zip((*self._topic_ids, "nothing fits"), probabilities[kept:], strict=True)
        signal = {
            "keywords": sorted(((o, squash(s)) for o, s in votes.offers.items()), key=lambda x: -x[1])[:top],
            "classifier": self._top_classes(probabilities[:kept], top),
            "classifier's topic model": sorted(((t, round(100 * float(p), 1)) for t, p in topic_model),
                                               key=lambda x: -x[1])[:top],
        }
        if self.encoder is not None and self._index is not None:
            semantic = self._semantic(self.encoder.embed(
                self._for_encoder([text], written), query=True))
            signal["encoder"] = sorted(((o, round(100 * float(s), 1)) for o, s in zip(self._offers, semantic.best[0],
                                                                                       strict=True)),
                                       key=lambda x: -x[1])[:top]
            signal["encoder: closest out-of-scope example"] = [("", round(100 * float(semantic.outside[0]), 1))]
            signal["encoder's linear head"] = self._top_classes(semantic.probe[0], top)
        fitted = self.models.fitted
        stage: Stage = fitted.full if not result.fast and fitted.full else fitted.fast
        weights = {"offer": stage.offer.weights(), "topic": stage.topic.weights(), "fits": stage.fits.weights()}
        if stage.entry is not None:  # a catalogue whose topics name no entry offers has none
            weights["entry"] = stage.entry.weights()
        return {"result": result, "signals": signal, "words": self.voter.explain(text, language),
                "weights": weights, "threshold": self.threshold, "report": fitted.report}

    def _top_classes(self, probabilities: np.ndarray, top: int) -> list[tuple[str, float]]:
        """The likeliest of the columns of `training.align`, in per cent."""
        names = [*self._offers, "nothing fits", *(f"topic {t}" for t in self._topic_ids)]
        return sorted(((o, round(100 * float(p), 1)) for o, p in zip(names, probabilities, strict=True)),
                      key=lambda x: -x[1])[:top]


def _likeliest_topic_first(scores: np.ndarray, topic_of: np.ndarray, topics: int) -> None:
    """Give the first place (and its score) to the best offer of the likeliest topic. An offer's
    score is P(topic) x its share of the topic, so a topic whose chance is split among several
    offers can lose the first place to the one offer of a less likely topic; a counsellor first
    decides what a question is about."""
    likeliest = int(per_topic(scores[None, :], topic_of, topics)[0].argmax())
    best = int(scores.argmax())
    if topic_of[best] != likeliest:
        inside = np.flatnonzero(topic_of == likeliest)
        lead = int(inside[scores[inside].argmax()])
        scores[[lead, best]] = scores[[best, lead]]


def _beside(texts: Sequence[str], native: Sequence[str]) -> list[str]:
    return [text if own == text else f"{text} {own}" for text, own in zip(texts, native, strict=True)]


def _named(signals: Signals, row: int) -> int | None:
    """The offer a one-word question names: the only offer whose own keywords it is ("Kibeka",
    "Kita"). The fused score knows little about one word (the examples are sentences), the
    editor who gave the offer that keyword knows more."""
    own = signals.own[row]
    if signals.words[row] != 1 or own.max() <= 0 or int((own == own.max()).sum()) != 1:
        return None
    return int(own.argmax())


def _diversify(ranked: list[tuple[str, float, bool]], catalogue: Catalogue) -> list[tuple[str, float, bool]]:
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
