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
        self.examples, self.owners, self.topic_owners = examples, owners, topic_owners
        self.offers, self.topics = offers, topics
        self._offer_columns = [np.flatnonzero(owners == k) for k in range(offers)]
        self._topic_columns = [np.flatnonzero(topic_owners == k) for k in range(topics)]
        self._outside = np.flatnonzero(owners == OUTSIDE)
        self.texts, self.text_owners = texts, text_owners

    def features(self, queries: np.ndarray, excluded: np.ndarray | None = None) -> SemanticFeatures:
        """`excluded`: a rows x examples mask of examples a row may not see (out-of-fold
        features while training)."""
        sims = queries @ self.examples.T
        if excluded is not None:
            sims = np.where(excluded, -1.0, sims)
        rows = len(queries)

        def best_of(groups: list[np.ndarray], k: int = 1) -> np.ndarray:
            out = np.full((rows, len(groups)), -1.0, np.float32)
            for column, members in enumerate(groups):
                if len(members):
                    block = sims[:, members]
                    kk = min(k, len(members))
                    out[:, column] = block.max(axis=1) if kk == 1 else np.partition(block, -kk, axis=1)[:, -kk:].mean(1)
            return out

        best = best_of(self._offer_columns)
        top3 = best_of(self._offer_columns, 3)
        topic_best = best_of(self._topic_columns)
        outside = sims[:, self._outside].max(axis=1) if len(self._outside) else np.full(rows, -1.0, np.float32)
        knn = np.zeros((rows, self.offers), np.float32)
        topic_knn = np.zeros((rows, self.topics), np.float32)
        k = min(NEIGHBOURS, sims.shape[1])
        if k:
            nearest = np.argpartition(sims, -k, axis=1)[:, -k:]
            weights = np.take_along_axis(sims, nearest, axis=1).clip(0)
            total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-6)
            owners, topic_owners = self.owners[nearest], self.topic_owners[nearest]
            for offer in range(self.offers):
                knn[:, offer] = (weights * (owners == offer)).sum(axis=1)
            for topic in range(self.topics):
                topic_knn[:, topic] = (weights * (topic_owners == topic)).sum(axis=1)
            knn /= total
            topic_knn /= total
        text = np.full((rows, self.offers), -1.0, np.float32)
        if len(self.texts):
            text_sims = queries @ self.texts.T
            for offer in range(self.offers):
                mine = self.text_owners == offer
                if mine.any():
                    text[:, offer] = text_sims[:, mine].max(axis=1)
        return SemanticFeatures(best, top3, text, knn, topic_best, topic_knn, outside.astype(np.float32))
