"""Load a catalogue folder, validate all of it once, and build the immutable model.

Every problem is collected (not just the first) and reported as
``offers/kassel/daycare.yaml:42: offer 'kita-anmeldung': unknown office 'jugendamtt'``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from bot import numbers
from bot.catalogue.model import (
    AUDIENCES,
    GERMAN_LEVELS,
    GOALS,
    TOPICS,
    Catalogue,
    FirstSteps,
    NewsItem,
    Notice,
    Offer,
    OfferText,
    Office,
    OfficeText,
    Topic,
)
from bot.catalogue.yamlsource import LineDict, LineList, YamlError, read_yaml
from bot.languages import LANGUAGES, SOURCE_LANGUAGE

META_FILE, OFFICES_FILE, TOPICS_FILE, NEWS_FILE = "catalogue.yaml", "offices.yaml", "topics.yaml", "news.yaml"
NOTICES_FILE, FIRST_STEPS_FILE = "notices.yaml", "first-steps.yaml"
NOT_OFFER_FILES = {META_FILE, OFFICES_FILE, TOPICS_FILE, NEWS_FILE, NOTICES_FILE, FIRST_STEPS_FILE}
SOURCE_DATE_RE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
STATUSES = ("draft", "reviewed")

ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Ids travel in Telegram's 64 bytes of callback data ("o:<id>:contact", "share:ar-o-<id>") and deep
# links ("ar-o-<id>_d12"), and into the store's columns (64 characters; topics 32); districts too.
MAX_ID, MAX_TOPIC_ID, MAX_DISTRICT = 48, 32, 64
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()/-]*[0-9]$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")

OFFICE_KEYS = {"id", "name", "address", "coordinates", "phone", "email", "website", "hours", "source_date",
               "languages", "districts", "source", "last_verified"}
OFFER_KEYS = {"id", "topic", "office", "title", "summary", "who", "ages", "audience", "cost", "conditions",
              "bring", "desk", "next", "keywords", "examples", "links", "districts", "source", "source_date",
              "last_verified"}
OFFER_TEXT_KEYS = {"status", "source_hash", "title", "summary", "who", "cost", "conditions", "bring", "desk",
                   "next", "keywords", "examples"}
NOTICE_TEXT_KEYS = {"status", "source_hash", "text"}
EXAMPLE_CHARS = (2, 400)  # an example question: at least a word, at most a long message
OFFER_TEXT_REQUIRED = ("title", "summary", "who", "cost", "desk")
OFFICE_TEXT_KEYS = {"status", "source_hash", "name", "hours"}

# Characters per field. A card is one chat message (Telegram: 4,096 characters in all), so a
# longer field is a paste gone wrong; unbounded, one 50 MB summary would be held, indexed and sent.
LONG_TEXT = 2000
FIELD_LIMITS = {"title": 300, "name": 300, "desk": 500, "hours": 300, "address": 300,
                "phone": 100, "email": 300, "keywords": 100, "districts": 100, "languages": 10,
                "names": 100, "synonyms": 100, "false_friends": 200}


class CatalogueError(Exception):
    """The catalogue has problems; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the catalogue")
        self.problems = problems


@dataclass(slots=True)
class _Report:
    problems: list[str]
    read: set[Path] = field(default_factory=set)  # files already read (and reported on)
    # Every example question seen so far, normalised: where it stands and what it was for,
    # so that one question taught as two different answers is reported at both places.
    examples: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, path: Path, line: int, subject: str, message: str) -> None:
        where = f"{_display(path)}:{line}" if line else _display(path)
        self.problems.append(f"{where}: {subject}: {message}" if subject else f"{where}: {message}")


    def example(self, path: Path, line: int, subject: str, lang: str, text: str, target: str) -> bool:
        """Register one example; False (and a problem) when the same question is already there
        (compared without case and extra spaces)."""
        key = f"{lang}:{' '.join(text.casefold().split())}"
        where = f"{_display(path)}:{line}"
        first = self.examples.get(key)
        if first is None:
            self.examples[key] = (where, target)
            return True
        if first[1] == target:
            self.add(path, line, subject, f"example '{text[:60]}' is there twice (first at {first[0]})")
        else:
            self.add(path, line, subject, f"example '{text[:60]}' is also an example of {first[1]} "
                                          f"(at {first[0]}): one question must teach one answer")
        return False


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _valid_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and "." in parts.netloc and not re.search(r"\s", value)


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


class _FileChecker:
    """Checks the fields of one mapping in one file, reporting with the field's line."""

    def __init__(self, report: _Report, path: Path, node: LineDict, subject: str) -> None:
        self.report, self.path, self.node, self.subject = report, path, node, subject

    def problem(self, key: str | None, message: str) -> None:
        line = self.node.line_of(key) if key else self.node.line
        self.report.add(self.path, line, self.subject, message)

    def unknown_keys(self, allowed: set[str]) -> None:
        for key in self.node:
            if key not in allowed:
                self.problem(key, f"unknown field '{key}'")

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.node.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(key, f"missing '{key}'")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(key, f"'{key}' must be text")
            return None
        if len(text := str(value).strip()) > (limit := FIELD_LIMITS.get(key, LONG_TEXT)):
            self.problem(key, f"'{key}' has {len(text):,} characters, more than {limit:,}: shorten it")
            return None
        return text

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            self.problem(key, f"'{key}' must be a list of texts")
            return ()
        texts = tuple(str(v).strip() for v in value if str(v).strip())
        limit = FIELD_LIMITS.get(key, LONG_TEXT)
        if (longest := max((len(t) for t in texts), default=0)) > limit:
            self.problem(key, f"an entry of '{key}' has {longest:,} characters, more than {limit:,}: shorten it")
            return ()
        return texts

    def examples(self, lang: str, target: str) -> tuple[str, ...]:
        """The `examples` list: each a question of sensible length, none taught twice."""
        value = self.node.get("examples")
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem("examples", "'examples' must be a list of questions")
            return ()
        kept = []
        for index, item in enumerate(value):
            line = value.line_of(index) if isinstance(value, LineList) else self.node.line_of("examples")
            text = str(item).strip() if isinstance(item, (str, int, float)) and not isinstance(item, bool) else ""
            if not (EXAMPLE_CHARS[0] <= len(text) <= EXAMPLE_CHARS[1]) or not any(c.isalpha() for c in text):
                self.report.add(self.path, line, self.subject,
                                f"example {index + 1} must be a question of {EXAMPLE_CHARS[0]}-{EXAMPLE_CHARS[1]} characters")
                continue
            if self.report.example(self.path, line, self.subject, lang, text, target):
                kept.append(text)
        return tuple(kept)

    def checked(self, key: str, ok: Callable[[str], bool], what: str) -> str | None:
        value = self.text(key)
        if value is not None and not ok(value):
            self.problem(key, f"malformed {what} '{value}'")
            return None
        return value

    def last_verified(self) -> date | None:
        raw = self.node.get("last_verified")
        if raw is None:
            return None
        parsed = _parse_date(raw)
        if parsed is None:
            self.problem("last_verified", f"bad date '{raw}' (use YYYY-MM-DD)")
        elif parsed > date.today() + timedelta(days=1):
            self.problem("last_verified", f"date '{raw}' is in the future")
            return None
        return parsed

    def source_date(self) -> str | None:
        """The date of the source: as precise as the source says (YYYY, YYYY-MM or YYYY-MM-DD)."""
        value = self.text("source_date")
        if value is None:
            return None
        padded = value + "-01" * ((10 - len(value)) // 3)
        if not SOURCE_DATE_RE.match(value) or _parse_date(padded) is None:
            self.problem("source_date", f"bad source_date '{value}' (use YYYY, YYYY-MM or YYYY-MM-DD)")
            return None
        if padded > date.today().isoformat():
            self.problem("source_date", f"source_date '{value}' is in the future")
            return None
        return value

    def districts(self, known: set[str]) -> tuple[str, ...]:
        values = self.texts("districts")
        for name in values:
            if name != "all" and known and name not in known:
                self.problem("districts", f"unknown district '{name}'")
        return values


def _phone_ok(value: str) -> bool:
    return bool(PHONE_RE.match(value)) and 3 <= sum(c.isdigit() for c in value) <= 15


def _mapping_list(report: _Report, path: Path, data: Any, key: str) -> list[LineDict]:
    if not isinstance(data, LineDict) or not isinstance(data.get(key), list):
        report.add(path, getattr(data, "line", 0) or 1, "", f"expected a list under '{key}:'")
        return []
    items = []
    for item in data[key]:
        if isinstance(item, LineDict):
            items.append(item)
        else:
            report.add(path, data.line_of(key), "", f"every entry under '{key}:' must be a mapping")
    return items


def _read(report: _Report, path: Path) -> Any:
    report.read.add(path)
    try:
        return read_yaml(path)
    except YamlError as exc:
        report.add(path, exc.line, "", exc.message)
    except OSError as exc:
        report.add(path, 0, "", f"cannot read: {exc.strerror or exc}")
    return None


def _check_lengths(report: _Report, path: Path, subject: str, table: LineDict, key: str) -> None:
    """Texts per language (topic names and synonyms, false friends, news) within the field's limit."""
    limit = FIELD_LIMITS.get(key, LONG_TEXT)
    for lang, value in table.items():
        longest = max((len(str(v)) for v in (value if isinstance(value, list) else [value])), default=0)
        if longest > limit:
            report.add(path, table.line_of(lang), subject,
                       f"'{key}' [{lang}] has {longest:,} characters, more than {limit:,}: shorten it")


def _check_id(check: _FileChecker, seen: dict[str, str], kind: str) -> str | None:
    ident = check.text("id", required=True)
    if ident is None:
        return None
    if not ID_RE.match(ident):
        check.problem("id", f"malformed id '{ident}' (use lower-case letters, digits and dashes)")
    limit = MAX_TOPIC_ID if kind == "topic" else MAX_ID
    if len(ident) > limit:
        check.problem("id", f"{kind} id '{ident}' is {len(ident)} characters long; use at most {limit} "
                            "(it must fit in a button's 64 bytes and in the database)")
    where = f"{_display(check.path)}:{check.node.line_of('id')}"
    if ident in seen:
        check.problem("id", f"duplicate {kind} id '{ident}' (first at {seen[ident]})")
        return None
    seen[ident] = where
    return ident


def _load_meta(report: _Report, folder: Path) -> tuple[dict[str, Any], LineDict | None]:
    path = folder / META_FILE
    data = _read(report, path)
    meta: dict[str, Any] = {"municipality": folder.name, "languages": LANGUAGES,
                            "fallback_offers": (), "districts": (), "district_aliases": {}, "out_of_scope": {}}
    if data is None:
        return meta, None
    if not isinstance(data, LineDict):
        report.add(path, 1, "", "expected a mapping")
        return meta, None
    check = _FileChecker(report, path, data, "")
    check.unknown_keys({"municipality", "source_language", "languages", "fallback_offers", "districts",
                        "district_aliases", "out_of_scope"})
    meta["municipality"] = check.text("municipality", required=True) or folder.name
    if (src := check.text("source_language")) and src != SOURCE_LANGUAGE:
        check.problem("source_language", f"the source language must be '{SOURCE_LANGUAGE}'")
    langs = check.texts("languages") or LANGUAGES
    for lang in langs:
        if lang not in LANGUAGES:
            check.problem("languages", f"unknown language '{lang}' (known: {', '.join(LANGUAGES)})")
    meta["languages"] = tuple(lang for lang in langs if lang in LANGUAGES)
    meta["fallback_offers"] = check.texts("fallback_offers")
    meta["districts"] = check.texts("districts")
    for name in meta["districts"]:
        if len(name) > MAX_DISTRICT:
            check.problem("districts", f"district name '{name[:30]}…' is longer than {MAX_DISTRICT} characters")
    aliases = data.get("district_aliases") or LineDict()
    meta["district_aliases"] = {}
    if not isinstance(aliases, LineDict):
        check.problem("district_aliases", "'district_aliases' must map a name to a list of districts")
    else:
        for alias, targets in aliases.items():
            if not isinstance(targets, list) or not all(t in meta["districts"] for t in targets):
                report.add(path, aliases.line_of(alias), "", f"district alias '{alias}' must list known districts")
            else:
                meta["district_aliases"][str(alias)] = tuple(targets)
    meta["out_of_scope"] = _out_of_scope(report, path, data)
    return meta, data


def _out_of_scope(report: _Report, path: Path, data: LineDict) -> dict[str, tuple[str, ...]]:
    """`out_of_scope: {lang: [questions]}`: what people ask that no offer answers."""
    table = data.get("out_of_scope")
    if table is None:
        return {}
    if not isinstance(table, LineDict):
        report.add(path, data.line_of("out_of_scope"), "", "'out_of_scope' must map languages to lists of questions")
        return {}
    holder = LineDict()
    holder.line = data.line_of("out_of_scope")
    holder["examples"] = table
    return _topic_examples(report, path, holder, "out_of_scope", "out_of_scope")


def _load_offices(report: _Report, folder: Path, districts: set[str]) -> dict[str, tuple[LineDict, Office]]:
    path = folder / OFFICES_FILE
    seen: dict[str, str] = {}
    offices: dict[str, tuple[LineDict, Office]] = {}
    for node in _mapping_list(report, path, _read(report, path), "offices"):
        check = _FileChecker(report, path, node, f"office '{node.get('id', '?')}'")
        check.unknown_keys(OFFICE_KEYS)
        ident = _check_id(check, seen, "office")
        name = check.text("name", required=True)
        source = check.text("source", required=True)
        coordinates = None
        if "coordinates" in node:
            raw = node["coordinates"]
            if (isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, (int, float)) for v in raw)
                    and -90 <= raw[0] <= 90 and -180 <= raw[1] <= 180):
                coordinates = (float(raw[0]), float(raw[1]))
            else:
                check.problem("coordinates", "coordinates must be [latitude, longitude]")
        spoken = check.texts("languages")
        for code in spoken:
            if not re.fullmatch(r"[a-z]{2,3}", code):
                check.problem("languages", f"malformed language code '{code}'")
        office = Office(
            id=ident or "", name=name or "", source=source or "",
            address=check.text("address"), coordinates=coordinates,
            phone=check.checked("phone", _phone_ok, "phone number"),
            email=check.checked("email", lambda v: bool(EMAIL_RE.match(v)), "e-mail address"),
            website=check.checked("website", _valid_url, "URL"),
            hours=check.text("hours"), languages=spoken,
            districts=check.districts(districts), last_verified=check.last_verified(), source_date=check.source_date(),
        )
        if ident:
            offices[ident] = (node, office)
    return offices


def _offer_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.name not in NOT_OFFER_FILES)


def _load_offers(report: _Report, folder: Path, office_ids: set[str],
                 districts: set[str]) -> dict[str, tuple[Path, LineDict, dict[str, Any]]]:
    seen: dict[str, str] = {}
    offers: dict[str, tuple[Path, LineDict, dict[str, Any]]] = {}
    for path in _offer_files(folder):
        for node in _mapping_list(report, path, _read(report, path), "offers"):
            check = _FileChecker(report, path, node, f"offer '{node.get('id', '?')}'")
            check.unknown_keys(OFFER_KEYS)
            ident = _check_id(check, seen, "offer")
            topic = check.text("topic", required=True)
            if topic and topic not in TOPICS:
                check.problem("topic", f"unknown topic '{topic}' (known: {', '.join(TOPICS)})")
            office = check.text("office", required=True)
            if office and office not in office_ids:
                check.problem("office", f"unknown office '{office}'")
            ages = _ages(check)
            audience = check.text("audience") or "all"
            if audience not in AUDIENCES:
                check.problem("audience", f"unknown audience '{audience}' (known: {', '.join(AUDIENCES)})")
            links = check.texts("links")
            for url in links:
                if not _valid_url(url):
                    check.problem("links", f"malformed URL '{url}'")
            german = _offer_text(check, "reviewed", SOURCE_LANGUAGE, f"offer {ident}")
            for item in german.bring if german else ():
                if item[:1].islower():  # German list items start with a capital: a comma split one?
                    check.problem("bring", f"item '{item}' starts in lower case: an item split at a comma? "
                                           f"Put an item with a comma in quotes")
            fields = dict(
                id=ident, topic=topic, office=office, source=check.text("source", required=True),
                ages=ages, audience=audience, links=tuple(u for u in links if _valid_url(u)),
                districts=check.districts(districts), last_verified=check.last_verified(),
                source_date=check.source_date(), german=german,
            )
            if ident:
                offers[ident] = (path, node, fields)
    return offers


NUMBERED_FIELDS = ("title", "summary", "who", "cost", "conditions", "desk", "next")


def _numbers_ok(check: _FileChecker, values: dict[str, str | None]) -> None:
    """Amounts and large numbers are tokens ({{eur:1603}}, {{num:1000}}) that each reader
    sees in their own locale; a malformed one would be shown as it is."""
    for key, value in values.items():
        for fragment in re.findall(r"\{\{[^}]*\}\}|\{\{", value or ""):
            if not numbers.TOKEN.fullmatch(fragment):
                check.problem(key, f"malformed number '{fragment}' (write {{{{eur:1603}}}} or {{{{num:1000}}}})")


def _same_numbers(check: _FileChecker, german: OfferText, text: OfferText) -> None:
    for key in (*NUMBERED_FIELDS, "bring"):
        ours = getattr(text, key) if key != "bring" else " ".join(text.bring)
        theirs = getattr(german, key) if key != "bring" else " ".join(german.bring)
        if numbers.tokens_in(ours or "") != numbers.tokens_in(theirs or ""):
            check.problem(key, f"the amounts in '{key}' differ from the German ({', '.join(numbers.tokens_in(theirs or '')) or 'none'})")


def _ages(check: _FileChecker) -> tuple[int, int | None] | None:
    """`ages: [from, to]` in years; `to` may be null where a source sets no upper limit."""
    if "ages" not in check.node:
        return None
    raw = check.node["ages"]
    if (isinstance(raw, list) and len(raw) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in raw if v is not None)
            and isinstance(raw[0], int) and 0 <= raw[0] <= (raw[1] if raw[1] is not None else raw[0]) <= 120):
        return (raw[0], raw[1])
    check.problem("ages", "ages must be [from, to] in years, from <= to (to may be null: no upper limit)")
    return None


def _offer_text(check: _FileChecker, status: str, lang: str, target: str) -> OfferText | None:
    values = {key: check.text(key, required=True) for key in OFFER_TEXT_REQUIRED}
    # Every offer says what to do first; a translation without it shows the German one.
    following = check.text("next", required=lang == SOURCE_LANGUAGE)
    _numbers_ok(check, {**values, "next": following, "conditions": check.text("conditions")})
    examples = check.examples(lang, target)
    if any(v is None for v in values.values()):
        return None
    return OfferText(
        title=values["title"] or "", summary=values["summary"] or "", who=values["who"] or "",
        cost=values["cost"] or "", desk=values["desk"] or "", next=following or "", conditions=check.text("conditions"),
        bring=check.texts("bring"), keywords=check.texts("keywords"), examples=examples, status=status,
    )


def _load_translations(report: _Report, folder: Path, languages: Iterable[str],
                       offers: dict[str, tuple[Path, LineDict, dict[str, Any]]],
                       offices: dict[str, tuple[LineDict, Office]]):
    offer_texts: dict[str, dict[str, OfferText]] = {i: {} for i in offers}
    office_texts: dict[str, dict[str, OfficeText]] = {i: {} for i in offices}
    notice_tables: dict[str, tuple[Path, Any]] = {}
    for lang in languages:
        if lang == SOURCE_LANGUAGE:
            continue
        path = folder / "lang" / f"{lang}.yaml"
        if not os.path.lexists(path):  # a broken link is not missing: _read says what it is
            report.add(path, 0, "", f"missing translation file for language '{lang}'")
            continue
        data = _read(report, path)
        if data is None:
            continue
        if not isinstance(data, LineDict):
            report.add(path, 1, "", "expected a mapping")
            continue
        top = _FileChecker(report, path, data, "")
        top.unknown_keys({"language", "offers", "offices", "notices"})
        if "notices" in data:
            notice_tables[lang] = (path, data["notices"])
        if data.get("language") != lang:
            top.problem("language", f"'language' must be '{lang}' in this file")
        for section, known in (("offers", offers), ("offices", offices)):
            entries = data.get(section) or LineDict()
            if not isinstance(entries, LineDict):
                top.problem(section, f"'{section}' must map ids to translations")
                continue
            for ident in entries:
                if ident not in known:
                    report.add(path, entries.line_of(ident), "", f"unknown {section[:-1]} '{ident}'")
        offer_entries = data.get("offers") if isinstance(data.get("offers"), LineDict) else LineDict()
        for ident, (src_path, src_node, fields) in offers.items():
            node = offer_entries.get(ident)
            if not isinstance(node, LineDict):
                report.add(src_path, src_node.line, f"offer '{ident}'", f"no '{lang}' translation in {_display(path)}")
                continue
            check = _FileChecker(report, path, node, f"offer '{ident}' [{lang}]")
            check.unknown_keys(OFFER_TEXT_KEYS)
            status = _status(check)
            text = _offer_text(check, status, lang, f"offer {ident}")
            german: OfferText | None = fields["german"]
            if text and german and check.text("source_hash") != offer_source_hash(german):
                text = replace(text, outdated=True)
            if text and german:
                if len(text.bring) != len(german.bring):
                    check.problem("bring", f"'bring' has {len(text.bring)} items, the German text {len(german.bring)}")
                if german.conditions and not text.conditions:
                    check.problem(None, "missing 'conditions' (the German text has them)")
                _same_numbers(check, german, text)
                offer_texts[ident][lang] = text
        office_entries = data.get("offices") if isinstance(data.get("offices"), LineDict) else LineDict()
        for ident, (src_node, office) in offices.items():
            node = office_entries.get(ident)
            if not isinstance(node, LineDict):
                report.add(folder / OFFICES_FILE, src_node.line, f"office '{ident}'",
                           f"no '{lang}' translation in {_display(path)}")
                continue
            check = _FileChecker(report, path, node, f"office '{ident}' [{lang}]")
            check.unknown_keys(OFFICE_TEXT_KEYS)
            name = check.text("name", required=True)
            hours = check.text("hours", required=bool(office.hours))
            if name:
                outdated = check.text("source_hash") != office_source_hash(office)
                office_texts[ident][lang] = OfficeText(name, hours, _status(check), outdated)
    return offer_texts, office_texts, notice_tables


def source_hash(*parts: object) -> str:
    """A short fingerprint of the German text a translation was made from: when the German
    changes, the translation shows as outdated until a translator updates it and this hash."""
    text = "\x1f".join("\x1e".join(p) if isinstance(p, tuple) else str(p or "") for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def offer_source_hash(text: OfferText) -> str:
    return source_hash(text.title, text.summary, text.who, text.cost, text.conditions, text.bring, text.desk,
                       text.next)


def office_source_hash(office: Office) -> str:
    return source_hash(office.name, office.hours)


def _status(check: _FileChecker) -> str:
    status = check.text("status") or "draft"
    if status not in STATUSES:
        check.problem("status", f"status must be one of {', '.join(STATUSES)}")
    return status


def _load_false_friends(report: _Report, path: Path, data: Any) -> dict[str, tuple[str, ...]]:
    table = data.get("false_friends") if isinstance(data, LineDict) else None
    if table is None:
        return {}
    if not isinstance(table, LineDict):
        report.add(path, data.line_of("false_friends"), "", "'false_friends' must map languages to lists of phrases")
        return {}
    found = {}
    for lang, phrases in table.items():
        if lang not in LANGUAGES:
            report.add(path, table.line_of(lang), "false_friends", f"unknown language '{lang}'")
        elif not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            report.add(path, table.line_of(lang), "false_friends", f"'{lang}' must be a list of phrases")
        else:
            found[lang] = tuple(p.strip() for p in phrases if p.strip())
    _check_lengths(report, path, "false_friends", table, "false_friends")
    return found


def _load_topics(report: _Report, folder: Path, languages: tuple[str, ...],
                 offer_topics: Mapping[str, str]) -> tuple[dict[str, Topic], dict]:
    path = folder / TOPICS_FILE
    topics: dict[str, Topic] = {}
    seen: dict[str, str] = {}
    data = _read(report, path)
    if isinstance(data, LineDict):
        for key in data:
            if key not in ("topics", "false_friends"):
                report.add(path, data.line_of(key), "", f"unknown field '{key}'")
    false_friends = _load_false_friends(report, path, data)
    for node in _mapping_list(report, path, data, "topics"):
        check = _FileChecker(report, path, node, f"topic '{node.get('id', '?')}'")
        check.unknown_keys({"id", "icon", "names", "synonyms", "examples", "entry"})
        ident = _check_id(check, seen, "topic")
        if ident and ident not in TOPICS:
            check.problem("id", f"unknown topic '{ident}' (known: {', '.join(TOPICS)})")
            continue
        names, synonyms = node.get("names"), node.get("synonyms")
        if not isinstance(names, LineDict):
            check.problem("names", "'names' must map languages to a name")
            names = LineDict()
        if not isinstance(synonyms, LineDict):
            check.problem("synonyms", "'synonyms' must map languages to lists of terms")
            synonyms = LineDict()
        for lang in languages:
            if not isinstance(names.get(lang), str) or not names[lang].strip():
                check.problem("names", f"missing '{lang}' name")
            terms = synonyms.get(lang)
            if not isinstance(terms, list) or not terms or not all(isinstance(t, (str, int)) for t in terms):
                check.problem("synonyms", f"missing '{lang}' synonyms")
        for key, table in (("names", names), ("synonyms", synonyms)):
            for lang in table:
                if lang not in LANGUAGES:
                    report.add(path, table.line_of(lang), check.subject, f"unknown language '{lang}'")
            _check_lengths(report, path, check.subject, table, key)
        examples = _topic_examples(report, path, node, check.subject, f"topic {ident}")
        entry = check.texts("entry")
        for offer in entry:
            if offer_topics.get(offer) != ident:
                check.problem("entry", f"'entry' must list offers of this topic: '{offer}' is not one")
        if ident:
            topics[ident] = Topic(
                id=ident, icon=check.text("icon") or "", examples=MappingProxyType(examples), entry=entry,
                names=MappingProxyType({k: str(v).strip() for k, v in names.items() if isinstance(v, str)}),
                synonyms=MappingProxyType({
                    k: tuple(str(t).strip() for t in v if str(t).strip())
                    for k, v in synonyms.items() if isinstance(v, list)
                }),
            )
    for ident in TOPICS:
        if ident not in topics and not seen.get(ident):
            report.add(path, 0, f"topic '{ident}'", "missing")
    return topics, false_friends


def _topic_examples(report: _Report, path: Path, node: LineDict, subject: str, target: str) -> dict[str, tuple[str, ...]]:
    table = node.get("examples")
    if table is None:
        return {}
    if not isinstance(table, LineDict):
        report.add(path, node.line_of("examples"), subject, "'examples' must map languages to lists of questions")
        return {}
    found = {}
    for lang, questions in table.items():
        if lang not in LANGUAGES:
            report.add(path, table.line_of(lang), subject, f"unknown language '{lang}'")
            continue
        holder = LineDict()
        holder.line = table.line_of(lang)
        holder["examples"] = questions
        holder.key_lines["examples"] = table.line_of(lang)
        found[str(lang)] = _FileChecker(report, path, holder, f"{subject} [{lang}]").examples(str(lang), target)
    return found


def _load_notices(report: _Report, folder: Path, translations: dict[str, tuple[Path, Any]],
                  offer_ids: set[str]) -> tuple[dict[str, Notice], dict[str, tuple[str, ...]]]:
    """notices.yaml: rules stated once ({id, text, offers, source, source_date}); translations
    in lang/<code>.yaml under `notices:` (missing or outdated ones show the German)."""
    path = folder / NOTICES_FILE
    if not path.exists():
        return {}, {}
    data = _read(report, path)
    notices: dict[str, Notice] = {}
    applies: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for node in _mapping_list(report, path, data, "notices"):
        check = _FileChecker(report, path, node, f"notice '{node.get('id', '?')}'")
        check.unknown_keys({"id", "text", "offers", "source", "source_date"})
        ident = _check_id(check, seen, "notice")
        text = check.text("text", required=True)
        source = check.text("source", required=True)
        offers = check.texts("offers")
        for offer in offers:
            if offer not in offer_ids:
                check.problem("offers", f"unknown offer '{offer}'")
        if ident and text and source:
            notices[ident] = Notice(ident, MappingProxyType({SOURCE_LANGUAGE: text}), source, check.source_date())
            applies[ident] = offers
    for lang, (lang_path, table) in translations.items():
        if not isinstance(table, LineDict):
            report.add(lang_path, 0, "", "'notices' must map notice ids to translations")
            continue
        for ident, entry in table.items():
            if ident not in notices:
                report.add(lang_path, table.line_of(ident), "", f"unknown notice '{ident}'")
                continue
            if not isinstance(entry, LineDict):
                report.add(lang_path, table.line_of(ident), "", f"notice '{ident}' must have 'text'")
                continue
            check = _FileChecker(report, lang_path, entry, f"notice '{ident}' [{lang}]")
            check.unknown_keys(NOTICE_TEXT_KEYS)
            _status(check)
            translated = check.text("text", required=True)
            if translated:
                notice = notices[ident]
                outdated = check.text("source_hash") != source_hash(notice.texts[SOURCE_LANGUAGE])
                notices[ident] = replace(notice, texts=MappingProxyType({**notice.texts, lang: translated}),
                                         outdated=notice.outdated | ({lang} if outdated else set()))
    return notices, applies


def _load_first_steps(report: _Report, folder: Path, offer_ids: set[str]) -> FirstSteps:
    """first-steps.yaml: which offers the guided first steps suggest (every id must exist)."""
    path = folder / FIRST_STEPS_FILE
    if not path.exists():
        return FirstSteps()
    data = _read(report, path)
    if not isinstance(data, LineDict):
        if data is not None:
            report.add(path, 1, "", "expected a mapping")
        return FirstSteps()
    top = _FileChecker(report, path, data, "first steps")
    top.unknown_keys({"counselling", "german", "children", "goals"})

    def ids(node: Any, key: str, where: LineDict) -> tuple[str, ...]:
        if not isinstance(node, list) or not all(isinstance(v, str) for v in node):
            report.add(path, where.line_of(key), "first steps", f"'{key}' must be a list of offer ids")
            return ()
        for ident in node:
            if ident not in offer_ids:
                report.add(path, where.line_of(key), "first steps", f"unknown offer '{ident}'")
        return tuple(i for i in node if i in offer_ids)

    def table(key: str, known: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        node = data.get(key) or LineDict()
        if not isinstance(node, LineDict):
            top.problem(key, f"'{key}' must map names to lists of offer ids")
            return {}
        for name in node:
            if name not in known:
                report.add(path, node.line_of(name), "first steps", f"unknown '{key}' entry '{name}' (known: {', '.join(known)})")
        return {name: ids(node[name], name, node) for name in node if name in known}

    counselling = table("counselling", ("adults", "young"))
    german = table("german", (*GERMAN_LEVELS, "small_children"))
    bands = []
    children = data.get("children") or []
    if not isinstance(children, list):
        top.problem("children", "'children' must be a list of {ages: [from, to], offers: [...]}")
        children = []
    for node in children:
        if not isinstance(node, LineDict):
            top.problem("children", "every entry of 'children' must be {ages: [from, to], offers: [...]}")
            continue
        check = _FileChecker(report, path, node, "first steps")
        ages = _ages(check)
        if ages is None or ages[1] is None:
            check.problem("ages", "each age band needs [from, to]")
            continue
        bands.append((ages[0], ages[1], ids(node.get("offers"), "offers", node)))
    return FirstSteps(
        counselling_adults=counselling.get("adults", ()), counselling_young=counselling.get("young", ()),
        german=MappingProxyType({k: v for k, v in german.items() if k != "small_children"}),
        small_children=german.get("small_children", ()), children=tuple(bands),
        goals=MappingProxyType(table("goals", GOALS)),
    )


def _load_news(report: _Report, folder: Path) -> tuple[NewsItem, ...]:
    path = folder / NEWS_FILE
    if not os.path.lexists(path):
        return ()
    data = _read(report, path)
    if isinstance(data, LineDict) and data.get("news") in (None, []):
        return ()
    items = []
    seen: dict[str, str] = {}
    for node in _mapping_list(report, path, data, "news"):
        check = _FileChecker(report, path, node, f"news '{node.get('id', '?')}'")
        check.unknown_keys({"id", "topic", "date", "title", "text", "source"})
        ident = _check_id(check, seen, "news")
        topic = check.text("topic", required=True)
        if topic and topic not in TOPICS:
            check.problem("topic", f"unknown topic '{topic}'")
        day = _parse_date(node.get("date"))
        if day is None:
            check.problem("date", f"bad date '{node.get('date')}' (use YYYY-MM-DD)")
        source = check.text("source", required=True)
        tables = {}
        for key in ("title", "text"):
            table = node.get(key)
            if not isinstance(table, LineDict) or not isinstance(table.get(SOURCE_LANGUAGE), str):
                check.problem(key, f"'{key}' must map languages to text, with '{SOURCE_LANGUAGE}' at least")
                table = LineDict()
            for lang in table:
                if lang not in LANGUAGES:
                    check.problem(key, f"unknown language '{lang}'")
            _check_lengths(report, path, check.subject, table, key)
            tables[key] = MappingProxyType({k: str(v) for k, v in table.items() if k in LANGUAGES})
        if ident and topic in TOPICS and day and source and SOURCE_LANGUAGE in tables["title"] and SOURCE_LANGUAGE in tables["text"]:
            items.append(NewsItem(ident, topic, day, tables["title"], tables["text"], source))
    return tuple(items)


def _stray_entries(report: _Report, folder: Path) -> None:
    """A folder, broken link or device named *.yaml that no step above read: each its own sentence
    (it would otherwise surface as a bare OSError far from the catalogue)."""
    for path in sorted(folder.rglob("*.yaml")):
        if path not in report.read and not path.is_file():
            _read(report, path)


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        if not path.is_file():  # reported by _stray_entries
            continue
        digest.update(str(path.relative_to(folder)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:  # replaced while we read: the watcher sees the change and reloads
            digest.update(b"\0unreadable")
    return digest.hexdigest()[:12]


def load_catalogue(folder: Path | str) -> Catalogue:
    """Load and validate; raise CatalogueError listing every problem found."""
    folder = Path(folder)
    report = _Report([])
    if not folder.is_dir():
        raise CatalogueError([f"{_display(folder)}: not a catalogue folder (it should hold {META_FILE})"])
    meta, meta_node = _load_meta(report, folder)
    languages: tuple[str, ...] = meta["languages"]
    districts = set(meta["districts"])
    offices = _load_offices(report, folder, districts)
    offers = _load_offers(report, folder, set(offices), districts)
    offer_texts, office_texts, notice_tables = _load_translations(report, folder, languages, offers, offices)
    topics, false_friends = _load_topics(report, folder, languages, {i: f["topic"] for i, (_, _, f) in offers.items()})
    news = _load_news(report, folder)
    notices, notice_offers = _load_notices(report, folder, notice_tables, set(offers))
    first_steps = _load_first_steps(report, folder, set(offers))
    _stray_entries(report, folder)
    for ident in meta["fallback_offers"]:
        if ident not in offers:
            line = meta_node.line_of("fallback_offers") if meta_node else 0
            report.add(folder / META_FILE, line, "", f"unknown fallback offer '{ident}'")
    for topic in TOPICS:
        if topics and not any(f["topic"] == topic for _, _, f in offers.values()):
            report.add(folder, 0, f"topic '{topic}'", "has no offers")
    if report.problems:
        raise CatalogueError(report.problems)

    built: dict[str, Offer] = {}
    for ident, (_, _, f) in offers.items():
        texts = {SOURCE_LANGUAGE: f["german"], **offer_texts[ident]}
        built[ident] = Offer(
            id=ident, topic=f["topic"], office=f["office"], source=f["source"],
            texts=MappingProxyType(texts), ages=f["ages"], audience=f["audience"], links=f["links"],
            districts=f["districts"], last_verified=f["last_verified"], source_date=f["source_date"],
            notices=tuple(n.id for n in notices.values() if ident in notice_offers.get(n.id, ())),
        )
    built_offices = {
        ident: _with_texts(office, office_texts[ident]) for ident, (_, office) in offices.items()
    }
    by_topic = {t: tuple(i for i, o in built.items() if o.topic == t) for t in TOPICS}
    return Catalogue(
        municipality=meta["municipality"], languages=languages,
        topics=MappingProxyType({t: topics[t] for t in TOPICS}),
        offices=MappingProxyType(built_offices), offers=MappingProxyType(built),
        fallback_offers=meta["fallback_offers"], districts=meta["districts"],
        district_aliases=MappingProxyType(meta["district_aliases"]),
        version=_fingerprint(folder), by_topic=MappingProxyType(by_topic),
        false_friends=MappingProxyType(false_friends), news=news,
        out_of_scope=MappingProxyType(meta["out_of_scope"]), folder=str(folder),
        notices=MappingProxyType(notices), first_steps=first_steps,
    )


def _with_texts(office: Office, texts: dict[str, OfficeText]) -> Office:
    merged = {SOURCE_LANGUAGE: OfficeText(office.name, office.hours, "reviewed"), **texts}
    return replace(office, texts=MappingProxyType(merged))


def validate(folder: Path | str) -> list[str]:
    """Every problem in the catalogue at `folder`; an empty list when it is valid."""
    try:
        load_catalogue(folder)
    except CatalogueError as exc:
        return exc.problems
    return []
