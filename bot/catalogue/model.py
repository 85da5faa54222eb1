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
    "university",
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
    last_verified: date | None = None  # when we last checked the source
    source_date: str | None = None  # how old the source itself is: YYYY, YYYY-MM or YYYY-MM-DD
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
    next: str = ""  # the first thing to do, and where: what a person can act on today
    conditions: str | None = None
    bring: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    # Questions people ask when this offer is what they need, the way they write them: the
    # training phrases of the learned ranker. Not a translation: never outdated, never shown.
    examples: tuple[str, ...] = ()
    status: str = "draft"
    outdated: bool = False  # the German text changed after this translation was written


# Whom an offer serves: the person the question is about. "adults" offers are closed to
# children of school age (6-16 must go to school, see ../shared/kassel-facts.yaml).
AUDIENCES: tuple[str, ...] = ("children", "youth", "adults", "parents", "all")
SCHOOL_AGE_END = 16


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    topic: str
    office: str
    source: str
    texts: Mapping[str, OfferText]
    ages: tuple[int, int | None] | None = None  # sourced age range; None as the end: no upper limit
    audience: str = "all"
    links: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    last_verified: date | None = None  # when we last checked the source
    source_date: str | None = None  # how old the source itself is: YYYY, YYYY-MM or YYYY-MM-DD
    notices: tuple[str, ...] = ()  # ids of shared notices (rules) that concern this offer

    def text(self, lang: str) -> OfferText:
        """The text in `lang`; German (the source every offer has) where there is none, or where
        the German changed after the translation: then only the German says what is true now."""
        text = self.texts.get(lang)
        return text if text is not None and not text.outdated else self.texts["de"]

    def fits_age(self, age: float) -> bool:
        """Whether a person of `age` may use this offer, as far as its sourced facts tell."""
        if self.ages is not None:
            low, high = self.ages
            return low <= age < (high + 1 if high is not None else float("inf"))
        return not (self.audience == "adults" and age < SCHOOL_AGE_END)

    def examples(self) -> dict[str, tuple[str, ...]]:
        return {lang: text.examples for lang, text in self.texts.items() if text.examples}


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    icon: str
    names: Mapping[str, str]
    synonyms: Mapping[str, tuple[str, ...]]
    # Questions about the topic that no single offer names ("what does a grade 4 mean?", "must I
    # go to the Elternabend?"), per language: they teach the ranker the topic, not an offer.
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    # The offers a counsellor names first when a question is about the topic but names no offer
    # ("I want to learn German": the integration course): an editor's call, not catalogue order.
    entry: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("en") or self.id


@dataclass(frozen=True, slots=True)
class Notice:
    """A rule stated once, with its source, and shown on every offer it concerns (an admission
    stop for a kind of course): a change of the rule is one edit."""

    id: str
    texts: Mapping[str, str]  # language -> text; German always
    source: str
    source_date: str | None = None
    outdated: frozenset[str] = frozenset()  # languages whose translation predates the German

    def text(self, lang: str) -> str:
        return self.texts[lang] if lang in self.texts and lang not in self.outdated else self.texts["de"]


GERMAN_LEVELS: tuple[str, ...] = ("none", "some", "good", "reading")
GOALS: tuple[str, ...] = ("work", "training", "study", "family")


@dataclass(frozen=True, slots=True)
class FirstSteps:
    """The guided first steps: which offers to suggest for what a newcomer tells, in order."""

    counselling_adults: tuple[str, ...] = ()
    counselling_young: tuple[str, ...] = ()
    german: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)  # level -> offers
    small_children: tuple[str, ...] = ()  # a course with childcare, when children under 6 came
    children: tuple[tuple[int, int, tuple[str, ...]], ...] = ()  # (from age, to age, offers)
    goals: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)

    @property
    def available(self) -> bool:
        return bool(self.counselling_adults or self.german or self.children or self.goals)


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
    # Questions no offer answers (near misses such as "курс евро", a driving school), per
    # language: the ranker learns from them when to say that nothing fits.
    out_of_scope: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    folder: str = ""  # where it was loaded from (the ranker finds its shipped embeddings there)
    notices: Mapping[str, Notice] = field(default_factory=_empty)
    first_steps: FirstSteps = field(default_factory=FirstSteps)

    def office_of(self, offer: Offer) -> Office:
        return self.offices[offer.office]
