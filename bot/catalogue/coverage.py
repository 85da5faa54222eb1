"""Translation coverage: which offer and office texts exist in which language, and in what state.

Works on the raw files, so it also reports on a catalogue that does not validate yet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bot.catalogue.loader import META_FILE, OFFER_TEXT_REQUIRED, OFFICES_FILE, _offer_files, source_hash
from bot.catalogue.model import TOPICS
from bot.catalogue.yamlsource import YamlError, read_yaml
from bot.languages import LANGUAGES, SOURCE_LANGUAGE

MISSING, PARTIAL, OUTDATED, DRAFT, REVIEWED = "missing", "partial", "outdated", "draft", "reviewed"
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
    if kind == "office":
        return source_hash(_clean(item.get("name")), _clean(item.get("hours")))
    bring = tuple(_clean(b) for b in item.get("bring") or [] if _clean(b))
    return source_hash(*(_clean(item.get(f)) for f in ("title", "summary", "who", "cost", "conditions")), bring,
                       _clean(item.get("desk")))


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
    return Coverage(rows, present, required, len(offers), len(offices), languages,
                    min(per_topic.get(t, 0) for t in TOPICS))


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
    lines.append(f"offers={coverage.offers} offices={coverage.offices} languages={len(coverage.languages)} "
                 f"complete_pct={coverage.complete_pct:.1f} min_offers_per_topic={coverage.min_offers_per_topic} "
                 f"draft_pct={coverage.draft_pct:.1f}")
    return "\n".join(lines)
