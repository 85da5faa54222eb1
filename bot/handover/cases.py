"""Cases in the store: written at once (not through the write-behind queue), because a relay
must survive a restart the moment the sender has been told it is on its way.

States: a case is *offered* only in the engine's memory (nothing stored); *consented* once the
newcomer agreed (stored, not yet in the counsellors' room); *open* once its thread exists;
*closed* by either side or /forget. Closed cases are purged after the retention period.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.handover.tables import cases, relays
from bot.store import Store
from bot.store.privacy import scrub

log = logging.getLogger(__name__)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone, typed back
ACTIVE = ("consented", "open")
TO_COUNSELLORS, TO_NEWCOMER = "to_counsellors", "to_newcomer"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone=True columns; they were written in UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    number: str
    user_key: str
    transport: str
    address: str | None
    language: str
    topic: str | None
    question: str | None
    offers: tuple[str, ...]
    state: str
    thread_id: str | None
    created_at: datetime
    first_answer_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Relay:
    id: int
    case: Case
    direction: str
    kind: str
    body: str | None


class CaseStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.pseudonyms = store.pseudonyms
        self.changed = asyncio.Event()  # something waits to be relayed
        self.city = cases.c.municipality == store.municipality  # one database may serve several cities

    def _case(self, row) -> Case:
        return Case(row.id, row.number, row.user_key, row.transport, self.pseudonyms.open(row.address), row.language,
                    row.topic, self.pseudonyms.open(row.question) if row.question else None,
                    tuple(filter(None, (row.offers or "").split(","))), row.state, row.thread_id,
                    _aware(row.created_at), _aware(row.first_answer_at), _aware(row.closed_at))

    # -- the newcomer's side ---------------------------------------------------------------
    async def active(self, user_key: str) -> Case | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cases).where(cases.c.user_key == user_key, cases.c.state.in_(ACTIVE))
                                      .order_by(cases.c.id.desc()))).first()
        return self._case(row) if row else None

    async def open(self, user_key: str, transport: str, address: str, language: str, topic: str | None,
                   question: str | None, offers: Iterable[str]) -> Case:
        """The newcomer consented: store the case (one per person; an open one is reused)."""
        existing = await self.active(user_key)
        if existing is not None:
            return existing
        values = {"user_key": user_key, "transport": transport, "address": self.pseudonyms.seal(address),
                  "language": language, "topic": topic,
                  "question": self.pseudonyms.seal(scrub(question)[:2000]) if question else None,
                  "offers": ",".join(offers)[:255], "state": "consented", "created_at": _now(),
                  "municipality": self.store.municipality}
        for _attempt in range(5):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(cases).values(number="".join(secrets.choice(ALPHABET) for _ in range(5)),
                                                            **values))
                break
            except IntegrityError:  # the number was taken: draw another
                continue
        self.changed.set()
        case = await self.active(user_key)
        assert case is not None
        return case

    async def relay_from_newcomer(self, case: Case, text: str) -> None:
        await self._relay(case.id, TO_COUNSELLORS, "text", text)

    async def close(self, case: Case, by: str) -> bool:
        """Close an active case and tell the other side; whether it was still active."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(cases).where(cases.c.id == case.id, cases.c.state.in_(ACTIVE))
                                        .values(state="closed", closed_at=_now(), closed_by=by))
            if not result.rowcount:
                return False
            other = TO_NEWCOMER if by == "counsellor" else TO_COUNSELLORS
            await conn.execute(insert(relays).values(case_id=case.id, direction=other, kind="closed",
                                                     created_at=_now()))
        self.changed.set()
        return True

    async def forget(self, user_key: str) -> int:
        """/forget: the person's cases lose everything about them at once (key, chat address,
        question, messages not yet delivered); an active one is closed and the counsellors are told
        so. What stays until the purge is an anonymous closed case, for its thread and the figures."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(cases.c.id, cases.c.state).where(cases.c.user_key == user_key))).all()
            ids = [r.id for r in rows]
            if not ids:
                return 0
            await conn.execute(delete(relays).where(relays.c.case_id.in_(ids)))
            await conn.execute(update(cases).where(cases.c.id.in_(ids)).values(user_key="", address=b"", question=None))
            for row in rows:
                if row.state in ACTIVE:
                    await conn.execute(update(cases).where(cases.c.id == row.id).values(
                        state="closed", closed_at=_now(), closed_by="forget"))
                    await conn.execute(insert(relays).values(case_id=row.id, direction=TO_COUNSELLORS, kind="closed",
                                                             created_at=_now()))
        self.changed.set()
        return len(ids)

    # -- the counsellors' side ---------------------------------------------------------------
    async def by_thread(self, thread_id: str) -> Case | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cases).where(cases.c.thread_id == thread_id, self.city))).first()
        return self._case(row) if row else None

    async def relay_from_counsellor(self, case: Case, text: str, source_id: str) -> bool:
        """Keep a counsellor's reply for the newcomer; False when this event was kept before."""
        try:
            await self._relay(case.id, TO_NEWCOMER, "text", text, source_id)
        except IntegrityError:
            return False
        async with self.engine.begin() as conn:
            await conn.execute(update(cases).where(cases.c.id == case.id, cases.c.first_answer_at.is_(None))
                               .values(first_answer_at=_now()))
        return True

    async def open_cases(self) -> list[Case]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(cases).where(cases.c.state.in_(ACTIVE), self.city).order_by(cases.c.id))).all()
        return [self._case(r) for r in rows]

    # -- the relay worker ---------------------------------------------------------------------
    async def unposted(self) -> list[Case]:
        """Consented cases whose thread is not yet in the counsellors' room."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(cases).where(cases.c.thread_id.is_(None), cases.c.state == "consented", self.city)
                                       .order_by(cases.c.id))).all()
        return [self._case(r) for r in rows]

    async def posted(self, case: Case, thread_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(cases).where(cases.c.id == case.id).values(
                thread_id=thread_id, question=None, opened_at=_now()))
            # closed meanwhile (/stop before the thread existed): stays closed
            await conn.execute(update(cases).where(cases.c.id == case.id, cases.c.state == "consented")
                               .values(state="open"))

    async def pending(self, limit: int = 100) -> list[Relay]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(relays, cases).join(cases, cases.c.id == relays.c.case_id)
                                       .where(relays.c.sent_at.is_(None), self.city).order_by(relays.c.id).limit(limit))).all()
        found = []
        for row in rows:
            mapping = row._mapping
            body = mapping[relays.c.body]
            found.append(Relay(mapping[relays.c.id], self._case(_CaseRow(mapping)), mapping[relays.c.direction],
                               mapping[relays.c.kind], self.pseudonyms.open(body) if body else None))
        return found

    async def delivered(self, relay: Relay) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(relays).where(relays.c.id == relay.id).values(sent_at=_now(), body=None))

    async def _relay(self, case_id: int, direction: str, kind: str, text: str | None, source_id: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(relays).values(case_id=case_id, direction=direction, kind=kind,
                                                     body=self.pseudonyms.seal(text) if text else None,
                                                     source_id=source_id, created_at=_now()))
        self.changed.set()

    # -- retention and figures ------------------------------------------------------------------
    async def purge(self, retention_days: int, now: datetime | None = None) -> int:
        cutoff = (now or _now()) - timedelta(days=retention_days)
        async with self.engine.begin() as conn:
            ids = (await conn.execute(select(cases.c.id).where(cases.c.state == "closed", cases.c.closed_at < cutoff))
                   ).scalars().all()
            if ids:
                await conn.execute(delete(relays).where(relays.c.case_id.in_(ids)))
                await conn.execute(delete(cases).where(cases.c.id.in_(ids)))
        return len(ids)

    async def all_cases(self) -> list[Case]:
        async with self.engine.connect() as conn:
            return [self._case(r) for r in (await conn.execute(select(cases).where(self.city))).all()]


class _CaseRow:
    """The case columns of a relay-and-case join, under the names `CaseStore._case` reads."""

    def __init__(self, mapping) -> None:
        for column in cases.c:
            setattr(self, column.name, mapping[column])
