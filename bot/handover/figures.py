"""The city's figures about the handover: cases opened, answered, and the median time to the
first human answer, by language and by topic. From the cases kept (the retention period)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median

from bot.handover.cases import Case


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    opened: int
    answered: int
    median_minutes: float | None


def figures(cases: list[Case], by: str) -> list[Row]:
    """`by` is "language" or "topic"; a last row "all" sums up."""
    groups: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        groups[(case.language if by == "language" else case.topic) or "–"].append(case)
    rows = [_row(name, members) for name, members in sorted(groups.items())]
    return [*rows, _row("all", cases)]


def _row(name: str, cases: list[Case]) -> Row:
    waits = [(c.first_answer_at - c.created_at).total_seconds() / 60 for c in cases if c.first_answer_at]
    return Row(name, len(cases), len(waits), round(median(waits), 1) if waits else None)


def render(cases: list[Case]) -> str:
    parts = ["Counsellor handover (cases kept within the retention period)"]
    for by in ("language", "topic"):
        parts.append(f"{by:<12} {'opened':>7} {'answered':>9} {'median min to 1st answer':>25}")
        for row in figures(cases, by):
            wait = "–" if row.median_minutes is None else f"{row.median_minutes:.1f}"
            parts.append(f"{row.group:<12} {row.opened:>7} {row.answered:>9} {wait:>25}")
    return "\n".join(parts)
