"""What needs an editor's attention, computed from the loaded catalogue (once per version)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.catalogue import Catalogue
from bot.editors import source_day
from bot.languages import SOURCE_LANGUAGE

VERIFY_MONTHS = 12
FEW_EXAMPLES = 12  # README: at least 12 example questions per offer
CONTACT_FACTS = ("address", "phone", "email", "website", "hours")


@dataclass
class Attention:
    stale: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, id, last verified or source date)
    missing_contact: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (office, missing facts)
    # language -> [(kind, id, state)], state: missing, draft, outdated
    translations: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    few_examples: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # language -> [(offer, count)]
    counts: dict[str, Counter] = field(default_factory=dict)  # language -> state -> how many


def attention(catalogue: Catalogue, today: date | None = None) -> Attention:
    day = today or date.today()
    cutoff = day - timedelta(days=round(VERIFY_MONTHS * 30.44))
    found = Attention()
    for kind, entries in (("offer", catalogue.offers.values()), ("office", catalogue.offices.values())):
        for item in entries:
            dated = source_day(item.source_date)
            if item.last_verified is None or item.last_verified < cutoff or dated is None or dated < cutoff:
                found.stale.append((kind, item.id, f"{item.last_verified or 'never'} / {item.source_date or 'undated'}"))
    for office in catalogue.offices.values():
        missing = tuple(fact for fact in CONTACT_FACTS if not getattr(office, fact))
        if missing:
            found.missing_contact.append((office.id, missing))
    for lang in catalogue.languages:
        if lang == SOURCE_LANGUAGE:
            continue
        states = found.translations.setdefault(lang, [])
        for kind, entries in (("offer", catalogue.offers.values()), ("office", catalogue.offices.values())):
            for item in entries:
                text = item.texts.get(lang)
                state = "missing" if text is None else "outdated" if text.outdated else text.status
                if state != "reviewed":
                    states.append((kind, item.id, state))
        found.counts[lang] = Counter(state for _, _, state in states)
    for lang in catalogue.languages:
        few = [(offer.id, len(offer.texts[lang].examples) if lang in offer.texts else 0)
               for offer in catalogue.offers.values()]
        found.few_examples[lang] = [(ident, n) for ident, n in few if n < FEW_EXAMPLES]
    return found
