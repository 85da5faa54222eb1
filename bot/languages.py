"""The interface languages and what the rest of the code needs to know about them."""

from __future__ import annotations

from functools import cache

from babel import Locale

LANGUAGES: tuple[str, ...] = ("de", "en", "ar", "fa", "tr", "ru", "uk", "ro", "bg", "pl")
RTL: frozenset[str] = frozenset({"ar", "fa"})
SOURCE_LANGUAGE = "de"
DEFAULT_LANGUAGE = "en"


def is_rtl(lang: str) -> bool:
    return lang in RTL


@cache
def native_name(lang: str) -> str:
    """The language's own name for itself, from babel's CLDR data (e.g. "العربية")."""
    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


def normalise_code(code: str | None) -> str | None:
    """Map a platform language code ("fa-IR", "pt_BR", "prs", "uk-UA") to one of ours, or None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].strip().lower()
    base = {"prs": "fa", "per": "fa", "fas": "fa", "ara": "ar", "ger": "de", "deu": "de"}.get(base, base)
    return base if base in LANGUAGES else None
