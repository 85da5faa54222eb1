"""The learned lexical signal: a linear classifier over character n-grams and words.

Character n-grams see through typos, inflection and missing diacritics in every script
("kindergartn", "детсадик", "مهدکودک"); words and word pairs carry the rest. Trained on the
offers' example questions and texts in all languages, with "nothing fits" as one more class
(the out-of-scope examples), so it also learns what the catalogue does not cover.

A linear SVM (liblinear) trains several times faster than a logistic regression of the same
accuracy; its scores become probabilities through a softmax whose temperature is fitted on
out-of-fold scores (training.py). The features are counted by tfidf.py, which gives what
scikit-learn's vectorizers give in a fraction of their time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from bot.matching.normalise import normalise
from bot.matching.tfidf import CharGrams, WordGrams

NONE = "__none__"  # the class of out-of-scope questions
_REST = -1  # the classes of the other groups, while a group of classes is trained (_svm)
THREADS = 2  # liblinear fits in parallel threads: the folds, or the groups of classes of one model
# The SVMs' regularisation. Out of fold a lower C looks better (0.3: 0.891 of the examples' offers
# named by the fast stage, 1.0: 0.882), because a fold shares its writers with the rest; on
# questions by other writers 1.0 was best of 0.3, 0.5, 1.0 and 2.0.
C = 1.0
# Liblinear's passes over the examples per class (its default 1,000). The slowest classes took
# about 45. At 25 and at 15 the examples' out-of-fold figures stayed the same, and so did our
# eleven question sets (25: ±1 question per figure; 15: first offer right for 3 more questions);
# training took about a tenth less time. It then warns that it did not converge. 10 passes, and
# 5 for the topic model (few classes, but each as large as its offers together: a pass over one
# costs ten offers' passes), load as fast as 15 passes without the topic model, and gave our sets
# 4 more topics and 5 more first offers than 15 and 15.
MAX_ITER = 10
COARSE_MAX_ITER = 5
warnings.filterwarnings("ignore", message="Liblinear failed to converge", category=ConvergenceWarning)


class Ngrams:
    """Text -> sparse tf-idf features (character 3-4-grams within words, words and word pairs)."""

    def __init__(self) -> None:
        # The texts come normalised (once for both: normalising is a third of the fitting time).
        # Every piece seen twice is kept (about 80,000 n-grams and 70,000 words): a cap of 40,000
        # n-grams left out 4 in 10 in every script, which questions by other writers need (on our
        # held-out sets, first offer right for 6 more questions, out of scope for 5 more).
        # No 2-grams: they were 3 in 10 of all features a text has, so of the SVMs' time, and
        # without them our eleven question sets gave the same figures (±1 question per figure).
        self._chars = CharGrams(3, 4, min_df=2)
        self._words = WordGrams(min_df=2)

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        texts = [normalise(t) for t in texts]
        return sparse.hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)]).tocsr()

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        texts = [normalise(t) for t in texts]
        return sparse.hstack([self._chars.transform(texts), self._words.transform(texts)]).tocsr()


@dataclass(frozen=True, slots=True)
class Linear:
    """One-vs-rest linear scores: what is kept of fitted SVMs."""

    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def decision_function(self, matrix: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(matrix @ self.coef_.T) + self.intercept_


def _svm(matrix: sparse.csr_matrix, labels: Sequence[str], parts: int = 1, passes: int = MAX_ITER) -> Linear:
    """One-vs-rest linear SVMs, their classes in `parts` groups trained in parallel threads
    (liblinear releases the interpreter lock). Liblinear fits class k against all others with
    only class k's weight (the others count 1), so a group trained with the other groups' classes
    merged into one, and the weights of all classes given, gets exactly the weights it would get
    with all classes apart."""
    # Classes as numbers 0..n-1 (REST is -1): scikit-learn reads a class-weight key that looks
    # like a number as one, so an offer named "2024" would lose its weight.
    classes, codes, counts = np.unique(np.asarray(labels, dtype=object), return_inverse=True, return_counts=True)
    # Balanced: "nothing fits" has many more examples than any offer, and must not win by number.
    weight = dict(enumerate((len(codes) / (len(classes) * counts)).tolist()))
    groups = np.array_split(np.arange(len(classes)), parts if len(classes) >= 2 * parts else 1)

    def fit(group: np.ndarray) -> Linear:
        merged = np.where(np.isin(codes, group), codes, _REST) if len(groups) > 1 else codes
        # A looser tolerance than the default halves the time; a fixed seed for liblinear's shuffling
        # makes the same catalogue train the same model (unseeded, answers moved by run). Only
        # nearly the same: the threads share liblinear's one random state, so their weights still
        # differ by about 1e-4 from run to run, which moves a score's second decimal, not a ranking.
        # The merged rest gets weight 0: liblinear also fits it against the group (one-vs-rest),
        # a model not kept, and with no weight its side is fixed at once (a tenth of the time
        # saved). The group's own models do not depend on it: class k's fit weighs only class k.
        weights = {int(k): weight[int(k)] for k in group} | ({_REST: 0.0} if len(groups) > 1 else {})
        model = LinearSVC(C=C, class_weight=weights, tol=1e-3, random_state=0, max_iter=passes).fit(matrix, merged)
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # liblinear fits two classes as one: the second's scores, the first's negated
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        kept = model.classes_ != _REST
        return Linear(classes[model.classes_[kept]], coef[kept], intercept[kept])

    if len(groups) == 1:
        return fit(groups[0])
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        fitted = list(pool.map(fit, groups))
    return Linear(np.concatenate([f.classes_ for f in fitted]), np.vstack([f.coef_ for f in fitted]),
                  np.concatenate([f.intercept_ for f in fitted]))


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class NgramClassifier:
    def __init__(self, ngrams: Ngrams, model: Linear, temperature: float = 1.0, coarse: Linear | None = None,
                 coarse_temperature: float = 1.0) -> None:
        self._ngrams, self.temperature, self.coarse_temperature = ngrams, temperature, coarse_temperature
        self.labels: tuple[str, ...] = tuple(model.classes_)
        # Only the weights are kept, in single precision: half the memory of the fitted model,
        # and the same ranking (a score is one sparse product).
        self._weights = np.asarray(model.coef_, dtype=np.float32).T.copy()
        self._bias = np.asarray(model.intercept_, dtype=np.float32)
        # A second model on the same n-grams for coarser classes (the topics, training.py): a
        # class learns from all examples of its offers at once.
        self.coarse_labels: tuple[str, ...] = tuple(coarse.classes_) if coarse is not None else ()
        self._coarse_weights = np.asarray(coarse.coef_, dtype=np.float32).T.copy() if coarse is not None else None
        self._coarse_bias = np.asarray(coarse.intercept_, dtype=np.float32) if coarse is not None else None

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], fold: np.ndarray | None = None,
              temperature: float = 1.0, counted: Callable[[], object] | None = None,
              coarse: Sequence[str] | None = None,
              ) -> tuple[NgramClassifier, np.ndarray, tuple[str, ...], np.ndarray]:
        """The classifier on all texts, and (with `fold`) the score of each text with fold >= 0
        by a model trained without its fold (texts with fold -1 always train). One tf-idf fit
        serves all; the folds and the final model train in parallel threads (liblinear releases
        the interpreter lock). `counted` is called once the n-grams are counted: Python work
        waiting for it then runs beside liblinear instead of slowing the counting. `coarse`: a
        label per text for a second model on the same n-grams; its out-of-fold scores are the
        fourth value returned."""
        ngrams = Ngrams()
        matrix = ngrams.fit_transform(texts)
        if counted is not None:
            counted()
        if coarse is not None and len(set(coarse)) < 2:
            coarse = None  # one topic and no out-of-scope examples: nothing to tell apart
        labels_array = np.array(labels, dtype=object)
        coarse_array = np.array(coarse, dtype=object) if coarse is not None else None
        classes = tuple(sorted(set(labels)))
        coarse_classes = tuple(sorted(set(coarse))) if coarse is not None else ()
        scores = np.zeros((len(texts), len(classes)), dtype=np.float32)
        coarse_scores = np.zeros((len(texts), len(coarse_classes)), dtype=np.float32)
        folds = sorted(set(fold.tolist()) - {-1}) if fold is not None else []

        def held_out(model: Linear, held: np.ndarray, names: tuple[str, ...], out: np.ndarray) -> None:
            raw = model.decision_function(matrix[held])
            columns = [names.index(c) for c in model.classes_]
            out[np.ix_(held, columns)] = raw
            missing = [i for i, c in enumerate(names) if c not in set(model.classes_)]
            out[np.ix_(held, missing)] = raw.min() - 1.0  # a class absent from training: least likely

        def one(k: int) -> tuple[Linear, Linear | None] | None:
            if k < 0:  # alone (no folds), it uses both threads
                parts = THREADS if not folds else 1
                return _svm(matrix, labels, parts), _svm(matrix, coarse, parts, COARSE_MAX_ITER) if coarse is not None else None
            assert fold is not None
            train, held = fold != k, np.flatnonzero(fold == k)
            held_out(_svm(matrix[train], labels_array[train]), held, classes, scores)
            if coarse_array is not None:
                held_out(_svm(matrix[train], coarse_array[train], passes=COARSE_MAX_ITER), held, coarse_classes, coarse_scores)
            return None

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            final = list(pool.map(one, [-1, *folds]))[0]
        assert final is not None
        return cls(ngrams, final[0], temperature, final[1]), scores, classes, coarse_scores

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self._scores(self._ngrams.transform(texts))

    def _scores(self, matrix: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(matrix @ self._weights) + self._bias

    def repeated(self, labels: Sequence[str], source: Sequence[int]) -> NgramClassifier:
        """A classifier whose class i has the weights of our class source[i] (the 100x
        benchmark: thousands of offers at the cost they would really have)."""
        copy = object.__new__(NgramClassifier)
        copy._ngrams, copy.temperature, copy.labels = self._ngrams, self.temperature, tuple(labels)
        copy._weights = np.ascontiguousarray(self._weights[:, list(source)])
        copy._bias = self._bias[list(source)]
        copy.coarse_temperature, copy.coarse_labels = self.coarse_temperature, self.coarse_labels
        copy._coarse_weights, copy._coarse_bias = self._coarse_weights, self._coarse_bias
        return copy

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities per label (columns in the order of `labels`)."""
        return softmax(self.scores(texts), self.temperature)

    def proba_both(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities per label, and per coarse label (columns in the order of `coarse_labels`)."""
        matrix = self._ngrams.transform(texts)
        p = softmax(self._scores(matrix), self.temperature)
        if self._coarse_weights is None:
            return p, np.zeros((len(texts), 0), dtype=np.float32)
        return p, softmax(np.asarray(matrix @ self._coarse_weights) + self._coarse_bias, self.coarse_temperature)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature that makes out-of-fold scores the best probabilities (log loss)."""
    best, best_loss = 1.0, np.inf
    rows = np.arange(len(truth))
    for temperature in np.geomspace(0.5, 50, 40):
        p = softmax(scores, float(temperature))
        loss = -np.log(np.maximum(p[rows, truth], 1e-9)).mean()
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best
