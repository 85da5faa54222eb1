"""The learned lexical signal: a linear classifier over character n-grams and words.

Character n-grams see through typos, inflection and missing diacritics in every script
("kindergartn", "детсадик", "مهدکودک"); words and word pairs carry the rest. Trained on the
offers' example questions and texts in all languages, with "nothing fits" as one more class
(the out-of-scope examples), so it also learns what the catalogue does not cover.

A linear SVM (liblinear) trains in about a second on the Kassel catalogue, several times
faster than a logistic regression of the same accuracy; its scores become probabilities
through a softmax whose temperature is fitted on out-of-fold scores (training.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from bot.matching.normalise import normalise

NONE = "__none__"  # the class of out-of-scope questions


class Ngrams:
    """Text -> sparse tf-idf features (character 2-4-grams within words, words and word pairs)."""

    def __init__(self) -> None:
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), preprocessor=normalise,
                                      sublinear_tf=True, min_df=2, max_features=80_000, dtype=np.float32)
        self._words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), preprocessor=normalise,
                                      sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32)

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        matrix = sparse.hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)]).tocsr()
        # The n-grams left out (rare ones, beyond max_features) are kept only for inspection and
        # would make the cached model ten times larger.
        for vectorizer in (self._chars, self._words):
            vectorizer.stop_words_ = None
        return matrix

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self._chars.transform(texts), self._words.transform(texts)]).tocsr()


def _svm(matrix: sparse.csr_matrix, labels: Sequence[str]) -> LinearSVC:
    # Balanced: "nothing fits" has many more examples than any offer, and must not win by number.
    return LinearSVC(C=0.5, class_weight="balanced").fit(matrix, list(labels))


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class NgramClassifier:
    def __init__(self, ngrams: Ngrams, model: LinearSVC, temperature: float = 1.0) -> None:
        self._ngrams, self._model, self.temperature = ngrams, model, temperature
        self.labels: tuple[str, ...] = tuple(model.classes_)

    @staticmethod
    def out_of_fold(texts: Sequence[str], labels: Sequence[str], fold: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """Scores of each text with fold >= 0 by a model trained without its fold (texts with
        fold -1 always train). One tf-idf fit for all folds; folds train in parallel threads
        (liblinear releases the interpreter lock)."""
        matrix = Ngrams().fit_transform(texts)
        labels_array = np.array(labels, dtype=object)
        classes = tuple(sorted(set(labels)))
        scores = np.zeros((len(texts), len(classes)), dtype=np.float32)

        def one(k: int) -> None:
            train = fold != k
            model = _svm(matrix[train], labels_array[train])
            held = np.flatnonzero(fold == k)
            raw = model.decision_function(matrix[held])
            columns = [classes.index(c) for c in model.classes_]
            scores[np.ix_(held, columns)] = raw
            missing = [i for i, c in enumerate(classes) if c not in set(model.classes_)]
            scores[np.ix_(held, missing)] = raw.min() - 1.0  # a class absent from training: least likely

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(one, sorted(set(fold.tolist()) - {-1})))
        return scores, classes

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], temperature: float) -> NgramClassifier:
        ngrams = Ngrams()
        return cls(ngrams, _svm(ngrams.fit_transform(texts), labels), temperature)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.decision_function(self._ngrams.transform(texts)).astype(np.float32)

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities per label (columns in the order of `labels`)."""
        return softmax(self.scores(texts), self.temperature)


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
