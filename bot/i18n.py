"""Interface strings: gettext catalogues under locales/<lang>/LC_MESSAGES/messages.po.

The .po files are the source editors and translators work on. They are compiled with babel
when the bot starts (in memory, a few milliseconds), so a fresh checkout runs without a build
step and a compiled file can never be older than its source.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.languages import LANGUAGES
from bot.paths import LOCALES_DIR

DOMAIN = "messages"


@cache
def translations(lang: str, locales: Path = LOCALES_DIR) -> gettext.NullTranslations:
    po = locales / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang not in LANGUAGES or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def translator(lang: str) -> Callable[[str], str]:
    """The gettext function for `lang`; untranslated strings fall back to English."""
    return translations(lang).gettext
