"""Which of our ten languages a message is written in.

Three kinds of evidence, combined: the script (Arabic, Cyrillic or Latin letters decide the
group), letters that only one language of the group uses (پ/ة, і/ы/ъ, ğ/ș/ł/ß), and two
statistical opinions inside the group: lingua's low-accuracy n-gram models and how many of the
message's words are function words of each language. Lingua's low-accuracy mode costs about
14 MB and 50 ms at start-up; its high-accuracy mode (300 MB, 1.3 s) bought nothing on our
questions once the function words were counted too.

Many people write Arabic, Persian, Russian, Ukrainian or Bulgarian in Latin letters ("ibni
3omro 5 snin", "dokhtaram 7 salashe", "gde kurs nemetskogo"), which no n-gram model of the
Latin languages knows. `LatinGuess` learns them from the catalogue's own example questions
written in Latin letters: on those (5-fold), Latin-script questions are detected right 91 times
in 100 with it and 73 without (the romanised ones: from none to 75-92 in 100).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from lingua import Language, LanguageDetectorBuilder
from sklearn.svm import LinearSVC

from bot.matching.normalise import tokens
from bot.matching.tfidf import CharGrams

GROUPS: dict[str, tuple[str, ...]] = {
    "arabic": ("ar", "fa"),
    "cyrillic": ("ru", "uk", "bg"),
    "latin": ("de", "en", "tr", "ro", "pl"),
}
_LINGUA = {
    "de": Language.GERMAN, "en": Language.ENGLISH, "ar": Language.ARABIC, "fa": Language.PERSIAN,
    "tr": Language.TURKISH, "ru": Language.RUSSIAN, "uk": Language.UKRAINIAN,
    "ro": Language.ROMANIAN, "bg": Language.BULGARIAN, "pl": Language.POLISH,
}
_CODE = {v: k for k, v in _LINGUA.items()}
# n-gram models read one long German compound in an English sentence as German; the function
# words around it know better, so they weigh more.
LINGUA_WEIGHT = 0.4
_SCRIPT_RE = {
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]"),
    "cyrillic": re.compile(r"[\u0400-\u04ff]"),
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f]"),
}
# Letters only one language of its group writes.
_MARKERS: dict[str, re.Pattern[str]] = {
    "fa": re.compile(r"[پچژگیک]"),
    "ar": re.compile(r"[ةىيكإأؤ]"),
    "uk": re.compile(r"[іїєґІЇЄҐ]"),
    "ru": re.compile(r"[ыэёЫЭЁ]"),
    "bg": re.compile(r"\wъ\w|ѝ"),
    "tr": re.compile(r"[ğşıİĞŞ]"),
    "ro": re.compile(r"[ăâșțşţĂÂȘȚ]"),
    "pl": re.compile(r"[ąćęłńśźżĄĆĘŁŃŚŹŻ]"),
}
# German nouns stand in questions of every language ("Termin at the Ausländerbehörde"), so an
# "ä" or "ß" tells nothing; German itself is recognised well by its words.
LEARNED_WEIGHT = 2.0  # the learned guess against lingua + function words + letters (5-fold, see above)
LEARNED_SHARPNESS = 3.0  # SVM scores -> probabilities
MIXED_SCRIPT = 3  # this many Arabic or Cyrillic letters decide the script, whatever German words stand around


@dataclass(frozen=True, slots=True)
class Detection:
    language: str | None
    confidence: float


class LatinGuess:
    """Which language a question in Latin letters is in, learned from labelled questions."""

    def __init__(self, texts: Sequence[str], languages: Sequence[str]) -> None:
        latin = [(t, lang) for t, lang in zip(texts, languages, strict=True) if _script(t) == "latin"]
        self._vectorizer = CharGrams(1, 4, min_df=2, lowercase=True)
        matrix = self._vectorizer.fit_transform([t for t, _ in latin])
        model = LinearSVC(C=0.5, tol=1e-3, random_state=0).fit(matrix, [lang for _, lang in latin])
        self.languages = tuple(str(c) for c in model.classes_)
        coef, bias = model.coef_, model.intercept_
        if len(self.languages) == 2:  # a binary SVM has one score (for the second class): make it two
            coef, bias = np.vstack([-coef, coef]), np.concatenate([-bias, bias])
        self._weights = coef.astype(np.float32).T
        self._bias = bias.astype(np.float32)

    def probabilities(self, text: str) -> dict[str, float]:
        scores = (self._vectorizer.transform([text]) @ self._weights)[0] + self._bias
        e = np.exp(LEARNED_SHARPNESS * (scores - scores.max()))
        return dict(zip(self.languages, (e / e.sum()).tolist(), strict=True))


def _script(text: str) -> str | None:
    counts = {group: len(rx.findall(text)) for group, rx in _SCRIPT_RE.items()}
    others = max(("arabic", "cyrillic"), key=lambda g: counts[g])
    if counts[others] >= MIXED_SCRIPT or (counts[others] and counts[others] >= counts["latin"]):
        return others
    return "latin" if counts["latin"] else None


class LanguageDetector:
    def __init__(self, stopwords: Mapping[str, frozenset[str]], learned: LatinGuess | None = None) -> None:
        self.learned = learned
        # Only function words that one language of its script group has and the others lack
        # tell languages apart: Russian "где" in the Ukrainian list would make Russian look Ukrainian.
        self._stopwords = {}
        for codes in GROUPS.values():
            for code in codes:
                others = set().union(*(stopwords.get(c, frozenset()) for c in codes if c != code))
                self._stopwords[code] = frozenset(stopwords.get(code, frozenset()) - others)
        self._lingua = {
            group: LanguageDetectorBuilder.from_languages(*(_LINGUA[c] for c in codes))
            .with_low_accuracy_mode()
            .with_preloaded_language_models()
            .build()
            for group, codes in GROUPS.items()
        }

    def detect(self, text: str) -> Detection:
        group = _script(text)
        if group is None:
            return Detection(None, 0.0)
        codes = GROUPS[group]
        scores = dict.fromkeys(codes, 0.0)
        if group == "latin" and self.learned is not None:
            for code, p in self.learned.probabilities(text).items():
                scores[code] = scores.get(code, 0.0) + LEARNED_WEIGHT * p
        for value in self._lingua[group].compute_language_confidence_values(text):
            scores[_CODE[value.language]] += LINGUA_WEIGHT * value.value
        words = tokens(text)
        hits = {c: sum(w in self._stopwords.get(c, ()) for w in words) for c in codes}
        total = sum(hits.values())
        if total:
            for code in codes:
                scores[code] += (1 - LINGUA_WEIGHT) * hits[code] / total
        marked = {code for code in codes if code in _MARKERS and _MARKERS[code].search(text)}
        for code in marked:
            scores[code] += 0.3
        best = max(scores, key=lambda c: scores[c])
        ranked = sorted(scores.values(), reverse=True)
        margin = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
        # One word without a function word or a letter of its own ("Kita") is a guess.
        sure = len(words) > 1 or total or best in marked
        confidence = min(1.0, 0.5 + margin) if sure else min(0.4, 0.2 + margin)
        return Detection(best, round(confidence, 3))


def same_script(a: str, b: str) -> bool:
    """Whether two languages are written in the same script (as their speakers usually do)."""
    return any(a in codes and b in codes for codes in GROUPS.values())
