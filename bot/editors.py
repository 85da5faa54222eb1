"""Commands for editors and multipliers: link, preview, stale."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from bot.catalogue import Catalogue
from bot.config import Config
from bot.engine import Engine
from bot.languages import LANGUAGES, native_name
from bot.reply import Incoming
from bot.transports.console import numbered


def deep_link_payload(catalogue: Catalogue, lang: str, topic: str | None = None, offer: str | None = None,
                      district: str | None = None) -> str:
    """The start payload the engine understands: "ar", "ar-daycare", "ar-o-<offer>", "…_d<n>"."""
    payload = lang
    if offer:
        payload += f"-o-{offer}"
    elif topic:
        payload += f"-{topic}"
    if district:
        payload += f"_d{catalogue.districts.index(district)}"
    if len(payload) > 64:
        raise ValueError("the link payload is longer than Telegram's 64 characters")
    return payload


def links(config: Config, payload: str) -> dict[str, str | None]:
    telegram = f"https://t.me/{config.telegram.username}?start={payload}" if config.telegram.username else None
    matrix = f"https://matrix.to/#/{config.matrix.user_id}" if config.matrix.user_id else None
    return {"telegram": telegram, "matrix": matrix}


def check_link_args(catalogue: Catalogue, lang: str, topic: str | None, offer: str | None, district: str | None) -> str | None:
    if lang not in LANGUAGES:
        return f"unknown language '{lang}' (use one of {', '.join(LANGUAGES)})"
    if topic and topic not in catalogue.topics:
        return f"unknown topic '{topic}' (use one of {', '.join(catalogue.topics)})"
    if offer and offer not in catalogue.offers:
        return f"unknown offer '{offer}'"
    if district and district not in catalogue.districts:
        return f"unknown district '{district}' (use one of {', '.join(catalogue.districts)})"
    return None


def print_link(config: Config, catalogue: Catalogue, lang: str, topic: str | None, offer: str | None,
               district: str | None) -> int:
    problem = check_link_args(catalogue, lang, topic, offer, district)
    if problem:
        print(f"bildungslotse: {problem}", file=sys.stderr)
        return 2
    payload = deep_link_payload(catalogue, lang, topic, offer, district)
    found = links(config, payload)
    print(f"payload:  {payload}   (counted in `bildungslotse stats` under this name)")
    print(f"telegram: {found['telegram'] or 'set telegram.username in the config to make this link'}")
    print(f"matrix:   {found['matrix'] or 'set matrix.user_id in the config to make this link'}")
    return 0 if found["telegram"] or found["matrix"] else 2


def preview(engine: Engine, offer: str, languages: list[str]) -> str:
    """Exactly what the bot sends for an offer card, per language, as the terminal chat shows it."""
    parts = []
    for lang in languages:
        reply = engine.handle(Incoming(user=f"preview-{lang}", payload=f"o:{offer}:card", chosen_language=lang))
        text, _ = numbered(reply)
        parts.append(f"──── {native_name(lang)} ({lang}) ────\n{text}")
    return "\n\n".join(parts)


async def stale(catalogue: Catalogue, config: Config, months: int, today: date | None = None) -> str:
    """Offices and offers whose source is older than `months` (or undated), or not verified
    for that long, the most asked-for first (from the store). A fact checked yesterday on a
    page from 2016 is as old as the page."""
    from bot.app import open_store

    day = today or date.today()
    cutoff = day - timedelta(days=round(months * 30.44))
    store = await open_store(config, journal=False)
    try:
        rows = await store.event_rows(day - timedelta(days=365))
    finally:
        await store.close()
    sent_to = Counter(r.offer for r in rows if r.kind == "question" and r.offer)
    per_office: Counter[str] = Counter()
    for ident, count in sent_to.items():
        if ident in catalogue.offers:
            per_office[catalogue.offers[ident].office] += count
    items = []
    for kind, entries, counts in (("offer", catalogue.offers.values(), sent_to),
                                  ("office", catalogue.offices.values(), per_office)):
        for item in entries:
            dated = source_day(item.source_date)
            old_source = dated is None or dated < cutoff
            unchecked = item.last_verified is None or item.last_verified < cutoff
            if old_source or unchecked:
                items.append((counts[item.id], kind, item.id, item.source_date or "undated", item.last_verified))
    items.sort(key=lambda item: (-item[0], item[1], item[2]))
    lines = [f"{'sent to':>8}  {'kind':6}  {'id':34}  {'source of':10}  last verified"]
    lines += [f"{n:>8}  {kind:6}  {ident:34}  {source:10}  {when or 'never'}" for n, kind, ident, source, when in items]
    lines.append(f"stale={len(items)} months={months} cutoff={cutoff}")
    return "\n".join(lines)


def source_day(value: str | None) -> date | None:
    """The last day a source date (YYYY, YYYY-MM, YYYY-MM-DD) can mean: a page of 2019 counts
    as of the end of 2019."""
    if not value:
        return None
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 1:
        return date(parts[0], 12, 31)
    if len(parts) == 2:
        following = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
        return following - timedelta(days=1)
    return date(*parts)


def mark_translated(folder: Path, catalogue: Catalogue, lang: str, idents: list[str]) -> int:
    """Record that the `lang` texts of these offers/offices were brought up to date with the German:
    their source_hash becomes the current one (the line is edited in place; comments stay)."""
    import re

    from bot.catalogue.loader import offer_source_hash, office_source_hash

    path = folder / "lang" / f"{lang}.yaml"
    text = path.read_text(encoding="utf-8")
    for ident in idents:
        if ident in catalogue.offers:
            value = offer_source_hash(catalogue.offers[ident].texts["de"])
        elif ident in catalogue.offices:
            value = office_source_hash(catalogue.offices[ident])
        else:
            print(f"bildungslotse: unknown offer or office '{ident}'", file=sys.stderr)
            return 2
        pattern = re.compile(rf"(^  {re.escape(ident)}:\n(?:    .*\n)*?    source_hash: )\S+", re.MULTILINE)
        text, found = pattern.subn(rf"\g<1>{value}", text, count=1)
        if not found:
            print(f"bildungslotse: {path}: no '{ident}' entry with a source_hash line", file=sys.stderr)
            return 2
        print(f"{path}: {ident} marked as translated from the current German")
    path.write_text(text, encoding="utf-8")
    return 0
