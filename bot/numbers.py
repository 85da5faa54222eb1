"""Amounts and numbers in the reader's locale.

"1.603 €" is a thousand six hundred euros to a German and one euro sixty to a Ukrainian. The
catalogue therefore writes amounts and large numbers as tokens, `{{eur:1603}}`, `{{eur:2.29}}`,
`{{num:1000}}`, the same in every language, and they are formatted here with babel's CLDR data
for the language a reply is in (never by hand).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache

from babel import Locale
from babel.numbers import format_currency, format_decimal

TOKEN = re.compile(r"\{\{(eur|num):(\d+(?:\.\d+)?)\}\}")
_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")  # our renderer isolates right-to-left text itself


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def amount(value: Decimal, lang: str) -> str:
    """Euros: "1.603 €" (de), "€1,603" (en), "1 603 €" (ru); cents only where there are cents."""
    locale = _locale(lang)
    pattern = locale.currency_formats["standard"].pattern
    if value == value.to_integral_value():
        pattern = re.sub(r"0\.0+", "0", pattern)
    return format_currency(value, "EUR", format=pattern, locale=locale, currency_digits=False).translate(_MARKS)


def decimal(value: float | Decimal, lang: str) -> str:
    number = Decimal(str(value))
    if number == number.to_integral_value():
        number = number.to_integral_value()
    return format_decimal(number, locale=_locale(lang)).translate(_MARKS)


def localise(text: str, lang: str) -> str:
    """`text` with its amount and number tokens written for readers of `lang`."""
    def one(match: re.Match[str]) -> str:
        try:
            value = Decimal(match.group(2))
        except InvalidOperation:  # the loader checks tokens; this keeps a bad one visible, not fatal
            return match.group(0)
        return amount(value, lang) if match.group(1) == "eur" else decimal(value, lang)

    return TOKEN.sub(one, text)


def tokens_in(text: str) -> list[str]:
    """The tokens of a text, for checking that a translation keeps the German's numbers."""
    return sorted(match.group(0) for match in TOKEN.finditer(text))
