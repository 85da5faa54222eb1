"""Translation coverage: which offer and office texts exist in which language, and in what state.

Works on the raw files, so it also reports on a catalogue that does not validate yet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.catalogue.loader import (
    META_FILE,
    OFFER_TEXT_REQUIRED,
    OFFICES_FILE,
    _offer_files,
    offer_source_hash,
    office_source_hash,
)
from bot.catalogue.model import TOPICS, OfferText, Office
from bot.catalogue.yamlsource import YamlError, read_yaml
from bot.languages import LANGUAGES, SOURCE_LANGUAGE

MISSING, PARTIAL, OUTDATED, DRAFT, REVIEWED = "missing", "partial", "outdated", "draft", "reviewed"
CONTACT_FACTS = ("address", "phone", "email", "website", "hours")
ENOUGH_EXAMPLES = 12  # per offer and language: fewer, and the ranker knows that offer too little
SYMBOL = {MISSING: "✗", PARTIAL: "~", OUTDATED: "o", DRAFT: "d", REVIEWED: "✓"}


@dataclass(frozen=True, slots=True)
class Coverage:
    rows: list[tuple[str, dict[str, str]]]  # ("offer kita-anmeldung", {lang: state})
    fields_present: int
    fields_required: int
    offers: int
    offices: int
    languages: tuple[str, ...]
    min_offers_per_topic: int
    examples: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # (offer id, {lang: count})
    contacts_missing: list[tuple[str, list[str]]] = field(default_factory=list)  # (office id, missing facts)
    next_steps: int = 0  # offers whose card says what to do first

    @property
    def min_examples(self) -> int:
        return min((n for _, row in self.examples for n in row.values()), default=0)

    @property
    def complete_pct(self) -> float:
        return 100.0 * self.fields_present / self.fields_required if self.fields_required else 100.0

    @property
    def draft_pct(self) -> float:
        states = [s for _, row in self.rows for lang, s in row.items() if lang != SOURCE_LANGUAGE]
        translated = [s for s in states if s in (DRAFT, REVIEWED)]
        return 100.0 * sum(s == DRAFT for s in translated) / len(translated) if translated else 0.0


def _read(path: Path):
    try:
        return read_yaml(path) if path.exists() else None
    except YamlError:
        return None


def _required(german: dict) -> list[str]:
    fields = [f for f in OFFER_TEXT_REQUIRED if german.get(f)]
    return fields + [f for f in ("conditions", "bring") if german.get(f)]


def _clean(value) -> str:
    return str(value).strip() if value is not None and str(value).strip() else ""


def _german_hash(kind: str, item: dict) -> str:
    """The same fingerprint the loader checks (one function serves both)."""
    if kind == "office":
        return office_source_hash(Office(id="", name=_clean(item.get("name")), source="", hours=_clean(item.get("hours")) or None))
    bring = tuple(_clean(b) for b in item.get("bring") or [] if _clean(b))
    return offer_source_hash(OfferText(
        title=_clean(item.get("title")), summary=_clean(item.get("summary")), who=_clean(item.get("who")),
        cost=_clean(item.get("cost")), desk=_clean(item.get("desk")), next=_clean(item.get("next")),
        conditions=_clean(item.get("conditions")) or None, bring=bring))


def measure(folder: Path) -> Coverage:
    meta = _read(folder / META_FILE) or {}
    languages = tuple(meta.get("languages") or LANGUAGES)
    offers = [o for path in _offer_files(folder) for o in ((_read(path) or {}).get("offers") or [])
              if isinstance(o, dict) and o.get("id")]
    offices = [o for o in ((_read(folder / OFFICES_FILE) or {}).get("offices") or []) if isinstance(o, dict) and o.get("id")]
    translations = {lang: _read(folder / "lang" / f"{lang}.yaml") or {} for lang in languages if lang != SOURCE_LANGUAGE}
    rows: list[tuple[str, dict[str, str]]] = []
    present = required = 0
    for kind, items, fields_of in (("offer", offers, _required),
                                   ("office", offices, lambda o: ["name"] + (["hours"] if o.get("hours") else []))):
        for item in items:
            fields = fields_of(item)
            row = {SOURCE_LANGUAGE: REVIEWED}
            present += len(fields)
            required += len(fields)
            for lang, data in translations.items():
                entry = (data.get(f"{kind}s") or {}).get(item["id"]) if isinstance(data, dict) else None
                if not isinstance(entry, dict):
                    row[lang] = MISSING
                    required += len(fields)
                    continue
                have = [f for f in fields if entry.get(f)]
                if "bring" in have and len(entry["bring"]) != len(item.get("bring") or []):
                    have.remove("bring")
                present += len(have)
                required += len(fields)
                if len(have) < len(fields):
                    row[lang] = PARTIAL
                elif str(entry.get("source_hash")) != _german_hash(kind, item):
                    row[lang] = OUTDATED
                else:
                    row[lang] = REVIEWED if entry.get("status") == REVIEWED else DRAFT
            rows.append((f"{kind} {item['id']}", row))
    per_topic = Counter(o.get("topic") for o in offers)
    examples = []
    for offer in offers:
        counts = {SOURCE_LANGUAGE: len(offer.get("examples") or [])}
        for lang, data in translations.items():
            entry = ((data.get("offers") or {}) if isinstance(data, dict) else {}).get(offer["id"])
            counts[lang] = len(entry.get("examples") or []) if isinstance(entry, dict) else 0
        examples.append((offer["id"], counts))
    contacts = [(o["id"], [f for f in CONTACT_FACTS if not o.get(f)]) for o in offices]
    return Coverage(rows, present, required, len(offers), len(offices), languages,
                    min(per_topic.get(t, 0) for t in TOPICS), examples,
                    [(ident, missing) for ident, missing in contacts if missing],
                    sum(1 for o in offers if str(o.get("next") or "").strip()))


def report(coverage: Coverage) -> str:
    width = max((len(name) for name, _ in coverage.rows), default=10)
    head = " " * width + "  " + " ".join(f"{lang:>2}" for lang in coverage.languages)
    lines = [head]
    for name, row in coverage.rows:
        lines.append(f"{name:<{width}}  " + " ".join(f"{SYMBOL[row.get(lang, MISSING)]:>2}" for lang in coverage.languages))
    totals = Counter(state for _, row in coverage.rows for lang, state in row.items() if lang != SOURCE_LANGUAGE)
    lines.append("")
    lines.append("✓ reviewed  d draft  o outdated (the German changed since)  ~ partial  ✗ missing   translations: " +
                 ", ".join(f"{totals.get(s, 0)} {s}" for s in (REVIEWED, DRAFT, OUTDATED, PARTIAL, MISSING)))
    for lang in coverage.languages:
        if lang != SOURCE_LANGUAGE:
            counts = Counter(row.get(lang) for _, row in coverage.rows)
            lines.append(f"  {lang}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in (REVIEWED, DRAFT, OUTDATED, PARTIAL, MISSING)))
    lines.append("")
    lines.append(f"example questions per offer and language (fewer than {ENOUGH_EXAMPLES} marked !):")
    width = max((len(ident) for ident, _ in coverage.examples), default=10)
    lines.append(" " * width + "  " + " ".join(f"{lang:>3}" for lang in coverage.languages))
    for ident, counts in coverage.examples:
        lines.append(f"{ident:<{width}}  " + " ".join(
            f"{counts.get(lang, 0):>2}{'!' if counts.get(lang, 0) < ENOUGH_EXAMPLES else ' '}" for lang in coverage.languages))
    lines.append("")
    lines.append("offices without some contact facts (the card then gives the offer's sourced next step):")
    lines += [f"  {ident}: no {', '.join(missing)}" for ident, missing in coverage.contacts_missing]
    thin = sum(1 for _, counts in coverage.examples for n in counts.values() if n < ENOUGH_EXAMPLES)
    lines.append(f"offers={coverage.offers} offices={coverage.offices} languages={len(coverage.languages)} "
                 f"complete_pct={coverage.complete_pct:.1f} min_offers_per_topic={coverage.min_offers_per_topic} "
                 f"draft_pct={coverage.draft_pct:.1f} min_examples={coverage.min_examples} thin_offer_languages={thin} "
                 f"next_step={coverage.next_steps}/{coverage.offers} offices_missing_contact_facts={len(coverage.contacts_missing)}")
    return "\n".join(lines)
