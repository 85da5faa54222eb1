"""Text normalisation per script, so that spelling variants meet in one form.

Applied alike to catalogue terms and to questions: case folding; Latin diacritics, ß and
Turkish ı; Arabic diacritics, tatweel, alef/yeh/teh-marbuta forms and Persian ی/ک against
Arabic ي/ك; Cyrillic ё/е and Ukrainian і/ї/є/ґ. The result is for matching only, never shown.
"""

from __future__ import annotations

import re
import unicodedata

_TABLE = str.maketrans({
    # Latin letters that do not decompose into base + mark
    "ß": "ss", "ı": "i", "ł": "l", "Ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe",
    # Arabic: alef forms, alef maqsura, teh marbuta, hamza carriers, tatweel
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي", "ـ": "",
    # Persian against Arabic: yeh, kaf, heh with yeh above, Arabic-Indic digits
    "ی": "ي", "ک": "ك", "ۀ": "ه", "ې": "ي",
    "٠": "0", "١": "1", "٢": "2", "٣": "3", "٤": "4", "٥": "5", "٦": "6", "٧": "7", "٨": "8", "٩": "9",
    "۰": "0", "۱": "1", "۲": "2", "۳": "3", "۴": "4", "۵": "5", "۶": "6", "۷": "7", "۸": "8", "۹": "9",
    # Cyrillic: ё/е, Ukrainian і/ї/є/ґ folded onto the Russian letters they are typed as
    "ё": "е", "ї": "и", "і": "и", "є": "е", "ґ": "г", "ў": "у",
    # Zero-width non-joiner (Persian half-space) separates a suffix: treat it as a space
    "\u200c": " ",
})

# Combining marks (Latin accents, Arabic harakat and shadda, etc.) are dropped after NFD,
# except the ones that make a different Cyrillic letter (й is и + breve): those are recomposed first.
_KEEP_COMPOSED = {"й", "Й"}
_TOKEN_RE = re.compile(r"[^\W_]+")


_CYRILLIC_APOSTROPHE = re.compile(r"(?<=[а-яіїєґё])['’ʼ`](?=[а-яіїєґё])")


# Every combining mark of the basic plane, as one class: a regular expression drops them
# several times faster than a loop over the characters.
_COMBINING = re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x300, 0x10000)
                                      if unicodedata.combining(chr(c))) + "]")


def normalise(text: str) -> str:
    """Fold `text` to the matching form: lower case, no accents, unified letter forms."""
    text = _CYRILLIC_APOSTROPHE.sub("", text.casefold())  # Ukrainian "сім'я" is one word
    text = unicodedata.normalize("NFD", text.translate(_TABLE)).replace("и\u0306", "й")
    return _COMBINING.sub("", text).translate(_TABLE)


def tokens(text: str) -> list[str]:
    """Normalised word tokens (letters and digits; Arabizi keeps its digits: "7adane")."""
    return _TOKEN_RE.findall(normalise(text))


# Arabic and Persian attach articles, prepositions and conjunctions to the word;
# stripping them lets "بالمدرسة" and "والمدارس" meet "مدرسه".
_AR_PREFIXES = ("وبال", "وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف")
_AR_SUFFIXES = ("هاي", "هام", "ها", "هم", "كم", "نا", "ات", "ان", "ين", "ون", "ي", "ه", "ك")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")


def variants(token: str) -> tuple[str, ...]:
    """The token and, for Arabic script, its forms without clitics; most specific first."""
    if not _ARABIC_LETTER.match(token) or len(token) < 4:
        return (token,)
    forms = [token]
    for prefix in _AR_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            forms.append(token[len(prefix):])
            break
    for form in list(forms):
        for suffix in _AR_SUFFIXES:
            if form.endswith(suffix) and len(form) - len(suffix) >= 3:
                forms.append(form[: -len(suffix)])
                break
    return tuple(dict.fromkeys(forms))
