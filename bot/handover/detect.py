"""Does a message ask for a person instead of the bot? In any of the ten languages.

A word list per language (person_words.yaml) in groups, matched on the normalised tokens
of the message, with word endings open and Arabic-script clitics stripped, so that inflected and
unseen phrasings generalise: a person word together with a way to talk, or with "real"/"not a
bot"; or a short wish that ends in a human ("I want a human", "بدي موظف"). Cheap and explainable;
no catalogue offer can be asked for with both.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from pathlib import Path

import yaml

from bot.matching.normalise import normalise, tokens, variants

WORDS = Path(__file__).with_name("person_words.yaml")
GROUPS = ("person", "contact", "qualifier", "beneficiary", "human", "request", "polite")
WINDOW = 4  # at most this many words between the person and the way to talk
SHORT = 6  # words: a longer message that ends in "a human" says more than that it wants one
ROLE = frozenset({"als", "as", "ca", "jako", "как", "як", "като", "olarak"})  # "a job as an adviser"


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


def _wants_a_human(words: list[str], found: list[set[str]]) -> bool:
    """A short message that ends (before a "please") in a human after a wish ("I want a human"),
    or in a wish right after a human, as verb-final languages say it ("insan istiyorum")."""
    end = len(found)
    while end and "polite" in found[end - 1] and not found[end - 1] & {"human", "request"}:
        end -= 1
    if not end or len(found) > SHORT or (end > 1 and words[end - 2] in ROLE):
        return False
    last, before = found[end - 1], found[:end - 1]
    if "human" in last:
        return any("request" in groups for groups in before)
    return "request" in last and any("human" in groups for groups in before[-2:])


def asks_for_person(text: str) -> bool:
    words = tokens(text.replace("'", ""))
    found = [_groups_of(token) for token in words]
    if _wants_a_human(words, found):
        return True
    for index, groups in enumerate(found):
        if "person" not in groups or (index and "beneficiary" in found[index - 1]):
            continue
        near = found[max(0, index - WINDOW - 1): index] + found[index + 1: index + WINDOW + 2]
        if any(g & {"contact", "qualifier"} for g in near) or groups & {"qualifier"} - {"person"}:
            return True
    return False


def asks_only_for_person(text: str, function_words: Collection[str]) -> bool:
    """A wish for a person and nothing more ("can I talk to a real person?"): every other word
    is a function word. "Can I talk to someone about the Kita registration?" says what about,
    and that question the catalogue can answer."""
    if not asks_for_person(text):
        return False
    return all(word in function_words or _groups_of(word) for word in tokens(text.replace("'", "")))
