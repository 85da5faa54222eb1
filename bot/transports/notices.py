"""Sentences only some transports need (platforms without buttons, encrypted rooms)."""

from __future__ import annotations

from bot.i18n import translator


def choose_by_number(lang: str) -> str:
    _ = translator(lang)  # bound to `_`, so that pybabel extracts the sentence
    return _("Answer with the number of your choice.")


def undecryptable(lang: str) -> str:
    _ = translator(lang)
    return _("I could not read your encrypted message. Please send it again in a minute; if that does not help, write to me in a room without encryption.")  # noqa: E501
