"""The semantic signal: how close a question's sentence embedding is to each offer's example
questions (in all languages) and texts, to each topic's questions, and to the questions no offer
answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 10  # nearest example questions that vote for their offer and topic
OUTSIDE, TOPIC_ONLY = -1, -2  # owners of out-of-scope and of topic-level examples


@dataclass(frozen=True, slots=True)
class SemanticFeatures:
    """Per question (rows) and offer or topic (columns), and per question for out of scope."""

    best: np.ndarray  # cosine to the offer's closest example
    top3: np.ndarray  # mean cosine to its three closest examples
    text: np.ndarray  # cosine to the closest of its texts (title, summary, who; all languages)
    knn: np.ndarray  # share of the nearest example questions that are the offer's
    topic_best: np.ndarray  # cosine to the topic's closest question (its offers' and its own)
    topic_knn: np.ndarray  # share of the nearest questions that belong to the topic
    outside: np.ndarray  # cosine to the closest out-of-scope example, per question
    # the encoder's linear head (probe.py): probabilities per offer, "nothing fits", per topic's
    # general class (the classifier's columns); 0 where it was not given
    probe: np.ndarray

    def rows(self, index: np.ndarray) -> SemanticFeatures:
        return SemanticFeatures(*(getattr(self, name)[index] for name in self.__slots__))

    @staticmethod
    def concatenate(parts: list[SemanticFeatures]) -> SemanticFeatures:
        return SemanticFeatures(*(np.concatenate([getattr(p, name) for p in parts])
                                  for name in SemanticFeatures.__slots__))


class ExampleIndex:
    def __init__(self, examples: np.ndarray, owners: np.ndarray, topic_owners: np.ndarray,
                 texts: np.ndarray, text_owners: np.ndarray, offers: int, topics: int) -> None:
        """`owners`: the offer index of each example (OUTSIDE, TOPIC_ONLY); `topic_owners`: its
        topic index (-1 for out of scope)."""
        # Sorted by offer, so that per-offer maxima are one np.maximum.reduceat over the row.
        order = np.lexsort((topic_owners, owners))
        self.order = order
        self.examples, self.owners, self.topic_owners = examples[order], owners[order], topic_owners[order]
        self.offers, self.topics = offers, topics
        self._offer_groups = _groups(self.owners, offers)
        self._topic_groups = [np.flatnonzero(self.topic_owners == k) for k in range(topics)]
        self._outside = np.flatnonzero(self.owners == OUTSIDE)
        text_order = np.argsort(text_owners, kind="stable")
        self.texts, self.text_owners = texts[text_order], text_owners[text_order]
        self._text_groups = _groups(self.text_owners, offers)

    def features(self, queries: np.ndarray, excluded: np.ndarray | None = None,
                 probe: np.ndarray | None = None) -> SemanticFeatures:
        """`excluded`: a rows x examples mask of examples a row may not see (out-of-fold
        features while training); `probe`: the linear head's probabilities for the rows."""
        sims = queries @ self.examples.T
        if excluded is not None:
            sims = np.where(excluded[:, self.order], -1.0, sims)
        rows = len(queries)
        best = _reduce_max(sims, self._offer_groups)
        top3 = _top3_mean(sims, self._offer_groups)
        topic_best = np.full((rows, self.topics), -1.0, np.float32)
        for topic, members in enumerate(self._topic_groups):
            if len(members):
                topic_best[:, topic] = sims[:, members].max(axis=1)
        outside = sims[:, self._outside].max(axis=1) if len(self._outside) else np.full(rows, -1.0, np.float32)
        knn = np.zeros((rows, self.offers), np.float32)
        topic_knn = np.zeros((rows, self.topics), np.float32)
        k = min(NEIGHBOURS, sims.shape[1])
        if k:
            nearest = np.argpartition(sims, -k, axis=1)[:, -k:]
            weights = np.take_along_axis(sims, nearest, axis=1).clip(0)
            weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-6)
            rows_index = np.repeat(np.arange(rows), k)
            owners, topic_owners = self.owners[nearest].ravel(), self.topic_owners[nearest].ravel()
            flat = weights.ravel()
            mine = owners >= 0
            np.add.at(knn, (rows_index[mine], owners[mine]), flat[mine])
            mine = topic_owners >= 0
            np.add.at(topic_knn, (rows_index[mine], topic_owners[mine]), flat[mine])
        text = _reduce_max(queries @ self.texts.T, self._text_groups) if len(self.texts) else \
            np.full((rows, self.offers), -1.0, np.float32)
        if probe is None:
            probe = np.zeros((rows, self.offers + 1 + self.topics), np.float32)
        return SemanticFeatures(best, top3, text, knn, topic_best, topic_knn, outside.astype(np.float32),
                                probe.astype(np.float32))


def _groups(owners: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """For owners sorted ascending: the start of each group 0..count-1 and whether it is empty."""
    starts = np.searchsorted(owners, np.arange(count))
    ends = np.searchsorted(owners, np.arange(count), side="right")
    return starts, ends


def _reduce_max(sims: np.ndarray, groups: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    starts, ends = groups
    out = np.full((sims.shape[0], len(starts)), -1.0, np.float32)
    present = ends > starts
    if present.any() and sims.shape[1]:
        out[:, present] = np.maximum.reduceat(sims, starts[present], axis=1)[:, :present.sum()] \
            if np.all(np.diff(starts[present]) > 0) else _loop_max(sims, starts[present], ends[present])
    return out


def _loop_max(sims: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return np.stack([sims[:, a:b].max(axis=1) for a, b in zip(starts, ends, strict=True)], axis=1)


def _top3_mean(sims: np.ndarray, groups: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    starts, ends = groups
    out = np.full((sims.shape[0], len(starts)), -1.0, np.float32)
    for column in np.flatnonzero(ends > starts):
        block = sims[:, starts[column]:ends[column]]
        k = min(3, block.shape[1])
        out[:, column] = np.partition(block, -k, axis=1)[:, -k:].mean(axis=1)
    return out
