"""A linear head on the sentence encoder's embeddings (a "linear probe"): which offer a
question's meaning points to, learned from all example questions at once.

The nearest examples (semantic.py) vote with the ten questions most like a new one, so a few
examples that share its wording can outvote an offer whose examples share its meaning. The head
weighs every example of every offer: a linear discriminant (each class's mean embedding, seen
through the spread shared by all classes), in closed form, so it trains in a fraction of a second.
Out of fold it names an example question's own offer 84 times in 100, the nearest examples 77 (a
linear SVM 89 on one fold, but it trains 60 times as long: the catalogue would load too slowly).
It has the classifier's classes: offers, "nothing fits", the topics' general questions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.matching.classifier import softmax

# How far the shared spread is drawn towards a sphere: it is estimated from few examples per
# class in 384 dimensions. On one fold 0.02: 0.847, 0.1: 0.849, 0.2: 0.852 of the offers' examples named.
SHRINK = 0.2


class Probe:
    def __init__(self, labels: Sequence[str], weights: np.ndarray, bias: np.ndarray, temperature: float = 1.0) -> None:
        self.labels, self.temperature = tuple(labels), temperature
        self._weights, self._bias = weights.astype(np.float32), bias.astype(np.float32)  # dims x classes, classes

    @classmethod
    def train(cls, vectors: np.ndarray, labels: Sequence[str], fold: np.ndarray | None = None,
              temperature: float = 1.0) -> tuple[Probe, np.ndarray, tuple[str, ...]]:
        """The head on all vectors, and (with `fold`) each vector's scores by a head that did
        not see its fold (columns: the classes in sorted order)."""
        vectors, labels_array = np.asarray(vectors, dtype=np.float64), np.asarray(labels, dtype=object)
        head = cls(*_discriminant(vectors, labels_array), temperature)
        scores = np.zeros((len(vectors), len(head.labels)), dtype=np.float32)
        for k in np.unique(fold) if fold is not None else []:
            held = fold == k
            part = cls(*_discriminant(vectors[~held], labels_array[~held]))
            # A class with no example outside the fold is least likely there.
            column = {label: i for i, label in enumerate(part.labels)}
            index = np.array([column.get(label, -1) for label in head.labels])
            raw = part.scores(vectors[held])
            scores[held] = np.where(index >= 0, raw[:, np.maximum(index, 0)], raw.min() - 1.0)
        return head, scores, head.labels

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float32) @ self._weights + self._bias

    def proba(self, vectors: np.ndarray) -> np.ndarray:
        """Probabilities per label (columns in the order of `labels`)."""
        return softmax(self.scores(vectors), self.temperature)

    def repeated(self, labels: Sequence[str], source: Sequence[int]) -> Probe:
        """A head whose class i has the weights of our class source[i] (the 100x benchmark)."""
        return Probe(labels, self._weights[:, list(source)], self._bias[list(source)], self.temperature)


def _discriminant(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes, weights (dims x classes) and biases of a linear discriminant with equal priors:
    "nothing fits" has many more examples than any offer, and must not win by number."""
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    dims = vectors.shape[1]
    means = np.zeros((len(classes), dims))
    np.add.at(means, codes, vectors)
    means /= counts[:, None]
    # The classes' spreads averaged with equal weight, drawn towards a sphere of the same size.
    centred = (vectors - means[codes]) * np.sqrt(1.0 / (len(classes) * counts[codes]))[:, None]
    spread = centred.T @ centred
    spread = (1 - SHRINK) * spread + SHRINK * np.trace(spread) / dims * np.eye(dims)
    weights = np.linalg.solve(spread, means.T)
    return classes, weights, -0.5 * np.einsum("dk,kd->k", weights, means)
