"""The worker that carries a case both ways: new cases into the counsellors' room as threads,
newcomers' messages into their thread, counsellors' replies into the newcomer's chat.

Everything it carries is in the store first (cases.py) and marked delivered right after it went
out, so a restart of the bot or of Synapse repeats at most the one message in flight and loses
none; a failure on the way stops the round (order kept) and is retried. Each relay carries its
own case's encrypted address, so two newcomers never get each other's replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from bot.catalogue import Catalogue
from bot.handover.cases import TO_COUNSELLORS, Case, CaseStore, Relay
from bot.handover.dialogue import Desk, closed_by_counsellor, from_counsellor
from bot.languages import native_name
from bot.news import PermanentSendError, Send

log = logging.getLogger(__name__)


class Counsellors(Protocol):
    """Where counsellors read and answer: the Matrix transport's counsellors' room."""

    async def open_thread(self, text: str) -> str: ...  # the thread's root event id

    async def post_in_thread(self, thread_id: str, text: str) -> None: ...


# What counsellors read is German: the city's counselling desk works in German (like the
# admin answers, these are for staff, not in locales/). No platform id, no name, ever.
def summary(case: Case, catalogue: Catalogue) -> str:
    topic = catalogue.topics[case.topic].name("de") if case.topic in catalogue.topics else "–"
    lines = [f"Fall {case.number} · Sprache: {native_name(case.language)} ({case.language}) · Thema: {topic}",
             f"Frage: {case.question}" if case.question else "Frage: (noch keine – die erste Nachricht folgt hier)"]
    offers = [catalogue.offers[o] for o in case.offers if o in catalogue.offers]
    if offers:
        lines.append("Vom Bot schon vorgeschlagen: " + "; ".join(o.text("de").title for o in offers))
        desk = offers[0].text("de").desk
        if desk:
            lines.append(f"Satz für den Schalter: {desk}")
    lines.append("Antworten Sie in diesem Thread: die Antwort geht an die Person. !close schließt den Fall, "
                 "!cases zeigt die offenen Fälle.")
    return "\n".join(lines)


CLOSED_BY_NEWCOMER = "Die Person hat das Gespräch beendet. Der Fall ist geschlossen."
CLOSED_BY_FORGET = "Die Person hat ihre Daten löschen lassen. Der Fall ist geschlossen."


class Relayer:
    def __init__(self, cases: CaseStore, catalogue: Callable[[], Catalogue], counsellors: Counsellors,
                 senders: Mapping[str, Send], desk: Desk) -> None:
        self.cases, self.catalogue, self.counsellors = cases, catalogue, counsellors
        self.senders, self.desk = senders, desk

    async def deliver(self) -> int:
        """One round: post new cases, then everything waiting, oldest first; how many went out."""
        sent = 0
        for case in await self.cases.unposted():
            thread = await self.counsellors.open_thread(summary(case, self.catalogue()))
            await self.cases.posted(case, thread)
            sent += 1
        for relay in await self.cases.pending():
            if await self._carry(relay):
                sent += 1
        return sent

    async def _carry(self, relay: Relay) -> bool:
        case = relay.case
        if relay.direction == TO_COUNSELLORS:
            if case.thread_id is None:
                if case.state == "closed":  # ended before it reached the room: nothing to tell
                    await self.cases.delivered(relay)
                return False  # its thread comes first
            if relay.kind == "closed":
                text = CLOSED_BY_FORGET if case.address is None else CLOSED_BY_NEWCOMER
            else:
                text = relay.body or ""
            await self.counsellors.post_in_thread(case.thread_id, text)
        else:
            send = self.senders.get(case.transport)
            if send is None:
                return False  # that platform is not running in this process
            if case.address is None:
                await self.cases.delivered(relay)  # forgotten meanwhile
                return False
            reply = (closed_by_counsellor(case.language) if relay.kind == "closed"
                     else from_counsellor(case.language, relay.body or "", self.desk))
            try:
                await send(case.address, reply)
            except PermanentSendError as exc:
                log.info("handover: case %s: the newcomer cannot be reached (%s)", case.number, exc)
        await self.cases.delivered(relay)
        return True

    async def run(self, every_s: float = 5.0, max_backoff_s: float = 30.0) -> None:
        """Deliver now, then whenever something is stored (and every few seconds: another process
        may have stored it, or the last round failed on the way)."""
        backoff = 1.0
        while True:
            self.cases.changed.clear()
            try:
                await self.deliver()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Synapse or the database away: try again
                log.warning("handover: relay paused (%s: %s); retrying in %.0f s", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cases.changed.wait(), every_s)


def age(since: datetime, now: datetime | None = None) -> str:
    minutes = int(((now or datetime.now(UTC)) - since).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} Tagen"
