"""When counsellors usually answer: configured spans such as "Mon-Fri 09:00-16:00" in a time zone.

The hours are configuration, never a fact the bot invents; with none configured the bot says
only that a counsellor answers as soon as they can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"(?i)^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """A configured span cannot be read; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class Span:
    first: int  # weekday, Monday = 0
    last: int
    start: time
    end: time

    def covers(self, moment: datetime) -> bool:
        return self.first <= moment.weekday() <= self.last and self.start <= moment.time() < self.end


@dataclass(frozen=True, slots=True)
class Hours:
    spans: tuple[Span, ...]
    zone: ZoneInfo

    @property
    def known(self) -> bool:
        return bool(self.spans)

    def is_open(self, now: datetime) -> bool:
        """Within the hours; with none configured, always (nothing to wait for that we could say)."""
        local = now.astimezone(self.zone)
        return not self.spans or any(span.covers(local) for span in self.spans)

    def next_opening(self, now: datetime) -> datetime | None:
        """The start of the next span after `now`, in the hours' zone."""
        local = now.astimezone(self.zone)
        starts = []
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for span in self.spans:
                if span.first <= day.weekday() <= span.last:
                    start = datetime.combine(day, span.start, self.zone)
                    if start > local:
                        starts.append(start)
        return min(starts, default=None)

    def describe(self, day_names: Callable[[int], str]) -> str:
        """"Monday–Friday 09:00–16:00", in the words `day_names` gives for a weekday."""
        parts = []
        for span in self.spans:
            days = day_names(span.first) if span.first == span.last else f"{day_names(span.first)}–{day_names(span.last)}"
            parts.append(f"{days} {span.start:%H:%M}–{span.end:%H:%M}")
        return "; ".join(parts)


def parse_hours(spans: Iterable[str], timezone: str = "Europe/Berlin") -> Hours:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"timezone '{timezone}' is unknown (use a name such as 'Europe/Berlin')") from None
    parsed = []
    for text in spans:
        match = _SPAN.match(text)
        if not match or match[1].lower() not in DAYS or (match[2] and match[2].lower() not in DAYS):
            raise HoursError(f"hours '{text}' cannot be read (write them like 'Mon-Fri 09:00-16:00')")
        first = DAYS.index(match[1].lower())
        last = DAYS.index(match[2].lower()) if match[2] else first
        try:
            start, end = time(int(match[3]), int(match[4])), time(int(match[5]), int(match[6]))
        except ValueError:
            raise HoursError(f"hours '{text}' name a time that does not exist") from None
        if last < first or end <= start:
            raise HoursError(f"hours '{text}' end before they start (write them like 'Mon-Fri 09:00-16:00')")
        parsed.append(Span(first, last, start, end))
    return Hours(tuple(parsed), zone)
