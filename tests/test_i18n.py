from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import translator
from bot.languages import LANGUAGES, native_name
from bot.paths import LOCALES_DIR


def catalog(lang: str):
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def template_ids() -> set[str]:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_string_is_translated_with_its_placeholders(lang):
    messages = {m.id: m.string for m in catalog(lang) if m.id}
    assert set(messages) == template_ids(), "run pybabel update (see README)"
    for msgid, msgstr in messages.items():
        assert msgstr, f"{lang}: untranslated {msgid!r}"
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", msgstr)), (lang, msgid)


def test_template_matches_the_code():
    source = "".join(p.read_text(encoding="utf-8") for p in Path(LOCALES_DIR.parent / "bot").rglob("*.py"))
    for msgid in template_ids():
        assert msgid in source, f"stale string in messages.pot: {msgid!r}"


def test_translator_uses_the_po_files():
    assert translator("de")("Cost") == "Kosten"
    assert translator("ar")("Cost") != "Cost"


def test_native_language_names():
    assert native_name("ar") == "العربية" and native_name("uk") == "Українська" and native_name("de") == "Deutsch"


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_transport_notices_are_translated(lang):
    from bot.transports import notices

    assert notices.choose_by_number(lang) != notices.choose_by_number("en")
    assert notices.undecryptable(lang) != notices.undecryptable("en")


def test_arabic_plural_forms_are_gnu_gettexts():
    """Babel's variant swaps forms 4 and 5 (11-99 and 100-102); translators work with GNU's."""
    translations = catalog("ar")
    expression = translations.plural_expr.replace(" ", "")
    assert "n%100>=11?4:5" in expression, expression
    from bot.i18n import translations as compiled

    forms = [compiled("ar").plural(n) for n in (0, 1, 2, 5, 11, 99, 100, 102, 111)]
    assert forms == [0, 1, 2, 3, 4, 4, 5, 5, 4]  # the compiled header chooses GNU's forms
