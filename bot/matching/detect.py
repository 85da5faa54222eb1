"""Which of our ten languages a message is written in.

Three kinds of evidence, combined: the script (Arabic, Cyrillic or Latin letters decide the
group), letters that only one language of the group uses (پ/ة, і/ы/ъ, ğ/ș/ł/ß), and two
statistical opinions inside the group: lingua's low-accuracy n-gram models and how many of the
message's words are function words of each language. Lingua's low-accuracy mode costs about
14 MB and 50 ms at start-up; its high-accuracy mode (300 MB, 1.3 s) bought nothing on our
questions once the function words were counted too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lingua import Language, LanguageDetectorBuilder

from bot.matching.normalise import tokens

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
    "de": re.compile(r"[äßÄ]"),
}


@dataclass(frozen=True, slots=True)
class Detection:
    language: str | None
    confidence: float


class LanguageDetector:
    def __init__(self, stopwords: Mapping[str, frozenset[str]]) -> None:
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
        counts = {group: len(rx.findall(text)) for group, rx in _SCRIPT_RE.items()}
        group = max(counts, key=lambda g: counts[g])
        if counts[group] == 0:
            return Detection(None, 0.0)
        codes = GROUPS[group]
        scores = dict.fromkeys(codes, 0.0)
        for value in self._lingua[group].compute_language_confidence_values(text):
            scores[_CODE[value.language]] += LINGUA_WEIGHT * value.value
        words = tokens(text)
        hits = {c: sum(w in self._stopwords.get(c, ()) for w in words) for c in codes}
        total = sum(hits.values())
        if total:
            for code in codes:
                scores[code] += (1 - LINGUA_WEIGHT) * hits[code] / total
        for code in codes:
            if code in _MARKERS and _MARKERS[code].search(text):
                scores[code] += 0.3
        # Persian keyboards write ی and ک; Arabic ones ي and ك: weigh the two groups of marks.
        best = max(codes, key=lambda c: scores[c])
        ranked = sorted(scores.values(), reverse=True)
        margin = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
        confidence = min(1.0, 0.5 + margin) if len(words) > 1 or total else min(0.5, 0.3 + margin)
        return Detection(best, round(confidence, 3))
