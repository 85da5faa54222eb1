"""One question back when the best answers are close and the person did not say what decides
between them: for whom ("for you or for your child?"), how old the child is, or which topic.
Never more than one question before an answer; the answer narrows the offers already found."""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalogue import Catalogue
from bot.catalogue.model import Offer
from bot.matching import Result

# The second offer is a real alternative when its score is at least this share of the first.
CLOSE = 0.6
CHILD_SIDE = frozenset({"children", "youth"})
ADULT_SIDE = frozenset({"adults"})


@dataclass(frozen=True, slots=True)
class Clarification:
    kind: str  # "who", "age" or "topic"
    options: tuple[str, ...]  # "me" / "child"; "6-16"; topic ids


def needed(result: Result, catalogue: Catalogue) -> Clarification | None:
    matches = tuple(m for m in result.matches if m.fits_person)
    if len(matches) < 2 or matches[1].score < CLOSE * matches[0].score:
        return None
    first, second = catalogue.offers[matches[0].offer], catalogue.offers[matches[1].offer]
    people = result.people
    if first.topic != second.topic:
        return Clarification("topic", (first.topic, second.topic))
    sides = {_side(first), _side(second)}
    if sides == {"child", "adult"} and not (people.ages or people.child or people.other_adult):
        return Clarification("who", ("me", "child"))
    if not people.ages and first.ages and second.ages and first.ages != second.ages \
            and {first.audience, second.audience} <= CHILD_SIDE:
        bands = _bands([catalogue.offers[m.offer] for m in matches[:4]])
        if len(bands) >= 2:
            return Clarification("age", bands)
    return None


def _side(offer: Offer) -> str:
    return "child" if offer.audience in CHILD_SIDE else "adult" if offer.audience in ADULT_SIDE else "any"


def _bands(offers: list[Offer]) -> tuple[str, ...]:
    """Age bands that tell the offers apart: cut at every age where one of them starts or ends."""
    cuts = sorted({o.ages[0] for o in offers if o.ages} | {o.ages[1] + 1 for o in offers if o.ages and o.ages[1] is not None})
    return tuple(f"{low}-{high - 1}" for low, high in zip(cuts, cuts[1:], strict=False) if high - 1 >= low)


def narrow(candidates: tuple[str, ...], kind: str, value: str, catalogue: Catalogue) -> tuple[str, ...]:
    """The candidates that fit the answer, in their order; all of them if none does."""
    def keep(ident: str) -> bool:
        offer = catalogue.offers[ident]
        if kind == "topic":
            return offer.topic == value
        if kind == "who":
            return _side(offer) != ("adult" if value == "child" else "child")
        if kind == "age":
            low, _, high = value.partition("-")
            return low.isdigit() and high.isdigit() and offer.fits_age((int(low) + int(high)) / 2)
        return True

    kept = tuple(i for i in candidates if i in catalogue.offers and keep(i))
    return kept or tuple(i for i in candidates if i in catalogue.offers)
