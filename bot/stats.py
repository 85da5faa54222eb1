"""`bildungslotse stats`: the anonymous figures per week, topic and language, for editors and
the city's education monitoring; as a table, CSV or a PNG chart."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.store import Store

HEADER = ["week", "topic", "language", "questions", "answered", "unanswered_pct", "helpful", "not_helpful"]


@dataclass
class Stats:
    rows: list[list] = field(default_factory=list)  # as HEADER
    unanswered: list[tuple[str, int]] = field(default_factory=list)  # (question, times)
    closest: dict[str, list[str]] = field(default_factory=dict)  # question -> nearest offers, for editors
    links: list[tuple[str, str, int]] = field(default_factory=list)  # (week, payload, uses)
    referrals: list[tuple[str, bool, int]] = field(default_factory=list)  # (payload, known, total)


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


async def collect(store: Store, weeks: int = 12, today: date | None = None, matcher=None) -> Stats:
    since = (today or datetime.now(UTC).date()) - timedelta(weeks=weeks)
    table: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    links: Counter = Counter()
    for row in await store.event_rows(since):
        week = week_of(row.day)
        if row.kind == "start" and row.payload:
            links[(week, row.payload)] += 1
            continue
        key = (week, row.topic or "-", row.language or "-")
        if row.kind == "question":
            table[key]["questions"] += 1
            table[key]["answered"] += bool(row.answered)
        elif row.kind == "feedback":
            table[key]["helpful" if row.helpful else "not_helpful"] += 1
    stats = Stats()
    for (week, topic, lang), c in sorted(table.items()):
        rate = 100.0 * (c["questions"] - c["answered"]) / c["questions"] if c["questions"] else 0.0
        stats.rows.append([week, topic, lang, c["questions"], c["answered"], round(rate, 1), c["helpful"], c["not_helpful"]])
    texts = Counter(" ".join(r.text.split()).casefold() for r in await store.unanswered_rows())
    stats.unanswered = texts.most_common(20)
    if matcher is not None:  # where an editor would add a keyword: the offers nearest to each question
        for text, _ in stats.unanswered:
            stats.closest[text] = [f"{m.offer} ({m.score:.0f})" for m in matcher.match(text).matches[:2]]
    stats.links = sorted(((w, p, n) for (w, p), n in links.items()), key=lambda x: (x[0], -x[2]))
    stats.referrals = [(r.payload, r.known, r.count) for r in await store.referral_rows()]
    return stats


def render_table(stats: Stats) -> str:
    out = []
    widths = [8, 20, 8, 9, 8, 14, 7, 11]
    out.append("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
    for row in stats.rows:
        out.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    if not stats.rows:
        out.append("(no questions recorded in this period)")
    questions = sum(r[3] for r in stats.rows)
    answered = sum(r[4] for r in stats.rows)
    out.append("")
    out.append("Top unanswered questions (add keywords or offers for these):")
    for text, n in stats.unanswered:
        out.append(f"  {n:>4}×  {text}")
        if stats.closest.get(text):
            out.append(f"         closest: {', '.join(stats.closest[text])} - add a keyword there if one fits")
    if not stats.unanswered:
        out.append("  (none kept)")
    out.append("")
    out.append("Multiplier links (deep-link payloads) used:")
    if stats.referrals:
        out.extend(f"  {n:>5}×  {payload if known else '(not one of our links)'}" for payload, known, n in stats.referrals)
    else:
        out.append("  (none)")
    rate = 100.0 * (questions - answered) / questions if questions else 0.0
    out.append("")
    out.append(f"questions={questions} answered={answered} unanswered_pct={rate:.1f} "
               f"helpful={sum(r[6] for r in stats.rows)} not_helpful={sum(r[7] for r in stats.rows)} "
               f"link_uses={sum(n for _, _, n in stats.referrals)}")
    return "\n".join(out)


def render_csv(stats: Stats) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(stats.rows)
    return buffer.getvalue()


def render_png(stats: Stats, path: Path) -> None:
    """Questions per week (answered and unanswered) and per topic, as a PNG chart."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("bildungslotse: --png needs matplotlib: pip install 'bildungslotse[charts]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = sorted({r[0] for r in stats.rows})
    answered = [sum(r[4] for r in stats.rows if r[0] == w) for w in weeks]
    unanswered = [sum(r[3] - r[4] for r in stats.rows if r[0] == w) for w in weeks]
    topics = Counter()
    for r in stats.rows:
        topics[r[1]] += r[3]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.bar(weeks, answered, label="answered", color="#2a7ab0")
    left.bar(weeks, unanswered, bottom=answered, label="unanswered", color="#e07b39")
    left.set_title("Questions per week")
    left.legend()
    left.tick_params(axis="x", rotation=45)
    names = [t for t, _ in topics.most_common()]
    right.barh(names, [topics[t] for t in names], color="#2a7ab0")
    right.set_title("Questions per topic")
    right.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
