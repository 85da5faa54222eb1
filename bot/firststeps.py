""""I'm new – where do I start?": two or three questions with buttons (who came, how much German,
what next), then a short personal checklist in order, each item a button to its offer's card.

The offers come from the catalogue (first-steps.yaml); the state of the questions lives in the
button payloads and the session, never in the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.catalogue import Catalogue
from bot.catalogue.model import GERMAN_LEVELS, GOALS

PREFIX = "fs:"


@dataclass(slots=True)
class Answers:
    """What a person told the first-steps questions so far."""

    children: set[str] = field(default_factory=set)  # age bands "0-2", ...
    with_children: bool = False
    german: str | None = None


def bands(catalogue: Catalogue) -> tuple[str, ...]:
    return tuple(f"{low}-{high}" for low, high, _ in catalogue.first_steps.children)


def checklist(catalogue: Catalogue, answers: Answers, goal: str) -> list[tuple[str, tuple[str, ...]]]:
    """(heading key, offer ids) in the order a newcomer should go, without repeats."""
    steps = catalogue.first_steps
    items: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()

    def add(key: str, offers: tuple[str, ...]) -> None:
        fresh = tuple(o for o in offers if o not in seen and o in catalogue.offers)
        seen.update(fresh)
        if fresh:
            items.append((key, fresh))

    add("counselling", (*steps.counselling_adults[:1], *steps.counselling_young[:1]))
    if answers.german in GERMAN_LEVELS:
        small = any(int(band.split("-")[0]) < 6 for band in answers.children)
        add("german", (*steps.german.get(answers.german, ()), *(steps.small_children if small else ())))
    for low, high, offers in steps.children:
        if f"{low}-{high}" in answers.children:
            add(f"children:{low}-{high}", offers)
    if goal in GOALS:
        add(f"goal:{goal}", steps.goals.get(goal, ()))
    return items
