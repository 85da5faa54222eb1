"""Does a message ask for a person instead of the bot? In any of the ten languages.

A word list per language (person_words.yaml) in three groups, matched on the normalised tokens
of the message, with word endings open and Arabic-script clitics stripped, so that inflected and
unseen phrasings generalise: a person word together with a way to talk, or with "real"/"not a
bot". Cheap and explainable; no catalogue offer can be asked for with both.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from bot.matching.normalise import normalise, tokens, variants

WORDS = Path(__file__).with_name("person_words.yaml")
GROUPS = ("person", "contact", "qualifier", "beneficiary")
WINDOW = 4  # at most this many words between the person and the way to talk


@cache
def _patterns() -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    """Per group: the exact words and the open stems, over all languages (a message in one
    language may borrow words of another: "ich will mit human sprechen")."""
    data = yaml.safe_load(WORDS.read_text(encoding="utf-8"))
    groups: dict[str, tuple[set[str], set[str]]] = {group: (set(), set()) for group in GROUPS}
    for words in data.values():
        for group in GROUPS:
            exact, stems = groups[group]
            for word in words.get(group, []):
                form = normalise(word.rstrip("*")).replace("'", "")
                (stems if word.endswith("*") else exact).add(form)
    return {group: (frozenset(exact), tuple(sorted(stems))) for group, (exact, stems) in groups.items()}


def _groups_of(token: str) -> set[str]:
    found = set()
    for form in variants(token):
        for group, (exact, stems) in _patterns().items():
            if form in exact or any(form.startswith(stem) for stem in stems):
                found.add(group)
    return found


def asks_for_person(text: str) -> bool:
    found = [_groups_of(token) for token in tokens(text.replace("'", ""))]
    for index, groups in enumerate(found):
        if "person" not in groups or (index and "beneficiary" in found[index - 1]):
            continue
        near = found[max(0, index - WINDOW - 1): index] + found[index + 1: index + WINDOW + 2]
        if any(g & {"contact", "qualifier"} for g in near) or groups & {"qualifier"} - {"person"}:
            return True
    return False
