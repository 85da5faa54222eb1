"""Russian, Ukrainian and Bulgarian written in Latin letters, back in Cyrillic, and Arabic and
Persian written in Latin letters (Arabizi, Finglish), back in Arabic script, for the sentence
encoder: it reads "gde kurs nemetskogo" as noise and "где курс немецкого" as a question. The
spelling people use is loose (a chat spelling, not a standard), so the result is approximate;
German and English words of the catalogue stay as written ("Kita", "Jobcenter")."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from bot.catalogue import Catalogue

# Letter groups, longest first; per language where the languages spell a sound differently.
_COMMON = (
    ("shch", "щ"), ("sch", "щ"), ("zh", "ж"), ("kh", "х"), ("ch", "ч"), ("sh", "ш"), ("ts", "ц"), ("tz", "ц"),
    ("ya", "я"), ("ja", "я"), ("yu", "ю"), ("ju", "ю"), ("iu", "ю"), ("ia", "я"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("w", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"),
    ("j", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"),
    ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("c", "ц"), ("x", "кс"), ("q", "к"), ("4", "ч"), ("6", "ш"),
    ("č", "ч"), ("š", "ш"), ("ž", "ж"),
)
_OWN = {
    "ru": (("yo", "ё"), ("jo", "ё"), ("ye", "е"), ("je", "е"), ("y", "ы"), ("'", "ь")),
    "uk": (("yi", "ї"), ("ji", "ї"), ("ye", "є"), ("je", "є"), ("i", "і"), ("y", "и"), ("h", "г"), ("g", "ґ"),
           ("'", "ь")),
    "bg": (("sht", "щ"), ("yo", "йо"), ("y", "ъ"), ("q", "я"), ("'", "ь")),  # chat Bulgarian: "dushterq"
}
_VOWELS = set("aeiouy")
# An apostrophe inside or after a word is a soft sign ("delat'"), before it a quotation mark.
_WORD = re.compile(r"[a-z46čšž][a-z'46čšž]*", re.IGNORECASE)
_DIGITS_ONLY = re.compile(r"[46]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN_WORD = re.compile(r"[a-zäöüß]{4,}")  # shorter words ("na", "da", "ne") are Slavic as often as not


def _table(language: str) -> list[tuple[str, str]]:
    pairs = dict(_COMMON)
    pairs.update(_OWN.get(language, ()))
    return sorted(pairs.items(), key=lambda p: -len(p[0]))


_TABLES = {language: _table(language) for language in _OWN}


# Arabizi and Finglish: digits for the letters Latin lacks ("3omri" = عمري), and short vowels,
# which the Arabic script does not write, left out inside a word ("madrase" = مدرسه). Measured on
# the catalogue's romanised Arabic and Persian examples: the nearest example is of the right offer
# 47 and 49 times in 100 this way, 37 and 44 as written (61 and 64 for those written in Arabic script).
_ARABIC_LETTERS = {
    "ar": (("sh", "ش"), ("ch", "ش"), ("kh", "خ"), ("gh", "غ"), ("th", "ث"), ("dh", "ذ"), ("3'", "غ"), ("7'", "خ"),
           ("ou", "و"), ("oo", "و"), ("ee", "ي"), ("aa", "ا"), ("2", "ء"), ("3", "ع"), ("5", "خ"), ("6", "ط"),
           ("7", "ح"), ("8", "ق"), ("9", "ص"), ("b", "ب"), ("t", "ت"), ("j", "ج"), ("d", "د"), ("r", "ر"),
           ("z", "ز"), ("s", "س"), ("f", "ف"), ("q", "ق"), ("k", "ك"), ("l", "ل"), ("m", "م"), ("n", "ن"),
           ("h", "ه"), ("w", "و"), ("y", "ي"), ("g", "ج"), ("p", "ب"), ("v", "ف"), ("x", "كس"), ("c", "ك")),
    "fa": (("kh", "خ"), ("sh", "ش"), ("ch", "چ"), ("zh", "ژ"), ("gh", "ق"), ("aa", "ا"), ("ou", "و"), ("oo", "و"),
           ("ee", "ی"), ("ii", "ی"), ("b", "ب"), ("p", "پ"), ("t", "ت"), ("j", "ج"), ("d", "د"), ("r", "ر"),
           ("z", "ز"), ("s", "س"), ("f", "ف"), ("q", "ق"), ("k", "ک"), ("g", "گ"), ("l", "ل"), ("m", "م"),
           ("n", "ن"), ("v", "و"), ("w", "و"), ("h", "ه"), ("y", "ی"), ("x", "کس"), ("c", "ک")),
}
_ARABIC_VOWELS = {  # (inside a word, at its end); a vowel at a word's start is an alef
    "ar": ({"i": "ي", "u": "و"}, {"a": "ا", "e": "ه", "i": "ي", "o": "و", "u": "و"}),
    "fa": ({"i": "ی", "u": "و"}, {"a": "ا", "e": "ه", "i": "ی", "o": "و", "u": "و"}),
}
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_ARABIZI_WORD = re.compile(r"[a-z0-9][a-z0-9']*", re.IGNORECASE)
_NO_LETTER = re.compile(r"[0-9']+|[a-c][12]", re.IGNORECASE)  # numbers and language levels ("b1") stay


@lru_cache(maxsize=1 << 16)  # words repeat: the catalogue's examples are converted at every load
def _arabic_word(word: str, language: str) -> str:
    letters = _ARABIC_LETTERS[language]
    inside, end = _ARABIC_VOWELS[language]
    out, i = [], 0
    while i < len(word):
        if word[i] in "aeiou":
            out.append("ا" if i == 0 else end[word[i]] if i == len(word) - 1 else inside.get(word[i], ""))
            i += 1
            continue
        for latin, arabic in letters:
            if word.startswith(latin, i):
                out.append(arabic)
                i += len(latin)
                break
        else:
            out.append("" if word[i] == "'" else word[i])
            i += 1
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def _word(word: str, language: str) -> str:
    table = _TABLES[language]
    out, i = [], 0
    while i < len(word):
        # "y" after a vowel is a "й" ("moy", "nay"), whatever the language writes for it elsewhere.
        if word[i] == "y" and i and word[i - 1] in _VOWELS and not word.startswith(("a", "u", "e"), i + 1):
            out.append("й")
            i += 1
            continue
        for latin, cyrillic in table:
            if word.startswith(latin, i):
                out.append(cyrillic)
                i += len(latin)
                break
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def vocabulary(phrases: Iterable[str]) -> frozenset[str]:
    """The words of German and English phrases (the catalogue's keywords, names, titles) that
    stay as written in a romanised question."""
    return frozenset(word for phrase in phrases for word in _LATIN_WORD.findall(phrase.lower()))


def catalogue_words(catalogue: Catalogue) -> frozenset[str]:
    """The German and English words of a catalogue (names of topics, their words, offers' titles
    and keywords): people mix them into Russian written in Latin letters as they are."""
    phrases = []
    for topic in catalogue.topics.values():
        for lang in ("de", "en"):
            phrases += [topic.names.get(lang, ""), *topic.synonyms.get(lang, ())]
    for offer in catalogue.offers.values():
        for lang in ("de", "en"):
            if (text := offer.texts.get(lang)) is not None:
                phrases += [text.title, *text.keywords]
    return vocabulary(phrases)


def _convert_words(text: str, words: re.Pattern[str], stays: re.Pattern[str], keep: frozenset[str],
                   convert: Callable[[str], str]) -> str:
    """`text` with each word `convert`ed, except words in `keep` (lowercase) and those `stays` matches."""

    def one(match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        return word if lower.rstrip("'") in keep or stays.fullmatch(word) else convert(lower)

    return words.sub(one, text)


def to_cyrillic(text: str, language: str | None, keep: frozenset[str] = frozenset()) -> str:
    """`text` with its Latin words in Cyrillic if it is Russian, Ukrainian or Bulgarian written in
    Latin letters only; words in `keep` (lowercase) and numbers stay as they are."""
    if language not in _TABLES or _CYRILLIC.search(text):
        return text
    return _convert_words(text, _WORD, _DIGITS_ONLY, keep, lambda word: _word(word, language))


def to_arabic_script(text: str, language: str | None, keep: frozenset[str] = frozenset()) -> str:
    """`text` with its Latin words in Arabic script if it is Arabic or Persian written in Latin
    letters only; words in `keep` (lowercase), numbers and language levels stay as they are."""
    if language not in _ARABIC_LETTERS or _ARABIC.search(text):
        return text
    return _convert_words(text, _ARABIZI_WORD, _NO_LETTER, keep, lambda word: _arabic_word(word, language))


def in_own_script(text: str, language: str | None, keep: frozenset[str] = frozenset()) -> str:
    """A romanised question in the script of its language, for the encoder and the classifier."""
    return to_arabic_script(text, language, keep) if language in _ARABIC_LETTERS else to_cyrillic(text, language, keep)
