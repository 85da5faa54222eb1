"""The catalogue as immutable values: what the loader produces and everything else reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

TOPICS: tuple[str, ...] = (
    "language-course",
    "daycare",
    "school",
    "school-to-work",
    "parents",
    "recognition-and-work",
    "counselling",
)


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class OfficeText:
    name: str
    hours: str | None = None
    status: str = "draft"
    outdated: bool = False  # the German text changed after this translation was written


@dataclass(frozen=True, slots=True)
class Office:
    id: str
    name: str
    source: str
    address: str | None = None
    coordinates: tuple[float, float] | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    hours: str | None = None
    languages: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    last_verified: date | None = None
    texts: Mapping[str, OfficeText] = field(default_factory=_empty)

    def text(self, lang: str) -> OfficeText:
        text = self.texts.get(lang)
        return text if text is not None and not text.outdated else OfficeText(self.name, self.hours, "reviewed")


@dataclass(frozen=True, slots=True)
class OfferText:
    title: str
    summary: str
    who: str
    cost: str
    desk: str
    conditions: str | None = None
    bring: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    status: str = "draft"
    outdated: bool = False  # the German text changed after this translation was written


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    topic: str
    office: str
    source: str
    texts: Mapping[str, OfferText]
    ages: tuple[int, int] | None = None
    links: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    last_verified: date | None = None

    def text(self, lang: str) -> OfferText:
        """The text in `lang`; German (the source every offer has) where there is none, or where
        the German changed after the translation: then only the German says what is true now."""
        text = self.texts.get(lang)
        return text if text is not None and not text.outdated else self.texts["de"]


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    icon: str
    names: Mapping[str, str]
    synonyms: Mapping[str, tuple[str, ...]]

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("en") or self.id


@dataclass(frozen=True, slots=True)
class NewsItem:
    id: str
    topic: str
    date: date
    titles: Mapping[str, str]
    texts: Mapping[str, str]
    source: str

    def title(self, lang: str) -> str:
        return self.titles.get(lang) or self.titles.get("en") or self.titles["de"]

    def text(self, lang: str) -> str:
        return self.texts.get(lang) or self.texts.get("en") or self.texts["de"]


@dataclass(frozen=True, slots=True)
class Catalogue:
    municipality: str
    languages: tuple[str, ...]
    topics: Mapping[str, Topic]
    offices: Mapping[str, Office]
    offers: Mapping[str, Offer]
    fallback_offers: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    district_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    version: str = ""
    by_topic: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    # Phrases whose words look like a topic's but mean something else ("курс доллара"),
    # per language: the matcher ignores their words.
    false_friends: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    news: tuple[NewsItem, ...] = ()

    def office_of(self, offer: Offer) -> Office:
        return self.offices[offer.office]
