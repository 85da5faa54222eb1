"""tf-idf over character n-grams within words, and over words and word pairs, several times
faster than scikit-learn's `TfidfVectorizer` and giving exactly what it gives (the same
vocabulary, the same matrix, so the same model is trained).

scikit-learn counts every piece of every text in a Python loop. Here a piece gets its number in
one dictionary step, and for character n-grams each distinct word is cut only once: a text's
counts are the sparse product (texts x words) @ (words x n-grams). Training at catalogue load
spent most of its Python time there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer

_WORD = re.compile(r"(?u)\b\w+\b")


def word_grams(word: str, low: int, high: int) -> list[str]:
    """The n-grams of one word padded with spaces, as scikit-learn's `char_wb` cuts them
    (a word shorter than n counts once, whole)."""
    padded = f" {word} "
    grams = []
    for n in range(low, high + 1):
        if n >= len(padded):
            grams.append(padded)
            break
        grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


def _counts(rows: Sequence[Sequence[int]], width: int) -> sparse.csr_matrix:
    """One row per sequence of column numbers, counting repeats."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=indptr[1:])
    indices = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(indptr[-1]))
    matrix = sparse.csr_matrix((np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(len(rows), width))
    matrix.sum_duplicates()  # also sorts the indices
    return matrix


class _Tfidf:
    """What both vectorizers share: the vocabulary as scikit-learn chooses it, and the weighting
    (`sublinear_tf`, smooth idf, rows of unit length)."""

    def __init__(self, min_df: int = 1, max_features: int | None = None, dtype: type = np.float32) -> None:
        self.min_df, self.max_features, self.dtype = min_df, max_features, dtype
        self.vocabulary_: dict[str, int] = {}
        self._tfidf = TfidfTransformer(sublinear_tf=True)

    def _fit(self, counts: sparse.csr_matrix, pieces: dict[str, int]) -> sparse.csr_matrix:
        """From counts over `pieces` (columns numbered as first seen): the columns in
        alphabetical order, then the rare and the surplus ones dropped, exactly as scikit-learn
        does it (ties fall the same way)."""
        names = sorted(pieces)
        order = np.empty(len(names), dtype=np.int32)
        order[[pieces[name] for name in names]] = np.arange(len(names), dtype=np.int32)
        # Each row's entries stay in the order of first sight, as scikit-learn leaves them: the
        # SVM sums features in that order, and another order would train weights a hair apart.
        counts.sort_indices()
        counts = sparse.csr_matrix((counts.data.astype(self.dtype), order[counts.indices], counts.indptr),
                                   shape=counts.shape)
        frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        mask = frequency >= self.min_df
        if self.max_features is not None and mask.sum() > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()
            chosen = np.zeros(len(mask), dtype=bool)
            chosen[np.flatnonzero(mask)[(-totals[mask]).argsort()[:self.max_features]]] = True
            mask = chosen
        kept = np.flatnonzero(mask)
        self.vocabulary_ = {names[old]: new for new, old in enumerate(kept.tolist())}
        counts = counts[:, kept]
        self._tfidf.fit(counts)
        return self._tfidf.transform(counts, copy=False)

    def _weigh(self, rows: Sequence[Sequence[int]]) -> sparse.csr_matrix:
        return self._tfidf.transform(_counts(rows, len(self.vocabulary_)).astype(self.dtype), copy=False)


class CharGrams(_Tfidf):
    """`TfidfVectorizer(analyzer="char_wb", ngram_range=(low, high), sublinear_tf=True, ...)`."""

    def __init__(self, low: int, high: int, min_df: int = 1, max_features: int | None = None,
                 lowercase: bool = False, dtype: type = np.float32) -> None:
        super().__init__(min_df, max_features, dtype)
        self.low, self.high, self.lowercase = low, high, lowercase

    def _words(self, text: str) -> list[str]:
        return (text.lower() if self.lowercase else text).split()

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        words: dict[str, int] = {}
        per_text = [[words.setdefault(w, len(words)) for w in self._words(t)] for t in texts]
        grams: dict[str, int] = {}
        per_word = [[grams.setdefault(g, len(grams)) for g in word_grams(w, self.low, self.high)] for w in words]
        return self._fit((_counts(per_text, len(words)) @ _counts(per_word, len(grams))).tocsr(), grams)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        vocabulary, known = self.vocabulary_, {}

        def columns(word: str) -> list[int]:
            if word not in known:
                known[word] = [vocabulary[g] for g in word_grams(word, self.low, self.high) if g in vocabulary]
            return known[word]

        return self._weigh([[c for w in self._words(t) for c in columns(w)] for t in texts])


class WordGrams(_Tfidf):
    """`TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False,
    token_pattern=r"(?u)\\b\\w+\\b", sublinear_tf=True, ...)`: words and word pairs."""

    @staticmethod
    def _pieces(text: str) -> list[str]:
        words = _WORD.findall(text)
        return [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        pieces: dict[str, int] = {}
        rows = [[pieces.setdefault(p, len(pieces)) for p in self._pieces(t)] for t in texts]
        return self._fit(_counts(rows, len(pieces)), pieces)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        vocabulary = self.vocabulary_
        return self._weigh([[vocabulary[p] for p in self._pieces(t) if p in vocabulary] for t in texts])
