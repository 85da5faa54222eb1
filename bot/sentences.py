"""The first sentence of a text, in any of our languages, for a card that fits one screen."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or the Arabic question mark) followed by a space and a capital
# letter, a digit, an opening quote or a letter of a script without case, unless the word
# before the dot is an abbreviation: a single letter ("z. B.", "т. е."), a number (the German
# ordinal "9. Februar"), or one of the common ones below.
_END = re.compile(r"(?<=[.!?؟])\s+(?=[A-ZÀ-ÞĀ-ŽА-ЯЁІЇЄҐ0-9\u0600-\u06ff„“\"«(])")
_ABBREVIATIONS = frozenset(["ca", "bzw", "usw", "ggf", "evtl", "inkl", "max", "min", "nr", "str", "tel", "vgl", "sog", "bspw", "mo", "di", "mi", "do", "fr", "sa", "so", "jh", "etc", "approx", "incl", "no", "vs", "mr", "mrs", "dr", "st", "ul", "вул", "ім", "им", "д", "т", "тел", "св", "ok", "ок", "проф"])


def first_sentence(text: str) -> str:
    for match in _END.finditer(text):
        before = text[:match.start()].rstrip()
        word = re.split(r"[\s(„“\"«/]", before)[-1].rstrip(".!?؟").lower()
        if before.endswith(".") and (len(word) <= 1 or word.isdigit() or word.replace(".", "") in _ABBREVIATIONS
                                     or "." in word):
            continue
        return before
    return text.strip()


_CLAUSE_END = re.compile(r"\s*[;؛]\s*")


def first_clause(text: str) -> str:
    """The text up to its first semicolon or the end of its first sentence, marked as cut
    ("…") where something follows; the text itself where nothing does."""
    text = text.strip()
    short = _CLAUSE_END.split(first_sentence(text), maxsplit=1)[0]
    return f"{short} …" if short and short != text else text
