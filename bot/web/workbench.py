"""The workbench's core, without HTTP: save an item (validated by the catalogue's own loader,
written back, kept as a revision, served by the bot at once), history and revert, the inbox."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.engine import Engine
from bot.store import Store
from bot.store.schema import events, unanswered
from bot.store.workbench import inbox_decisions, revisions
from bot.web import items
from bot.web.items import ItemNotFound, ItemRef

log = logging.getLogger(__name__)


@dataclass
class Saved:
    """What became of a save: done, a conflict (their values kept), or problems at fields."""

    values: dict[str, str]
    ok: bool = False
    conflict: dict[str, str] | None = None  # the values saved meanwhile
    problems: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    revision: int | None = None


class Workbench:
    def __init__(self, folder: Path, engine: Engine, store: Store,
                 reload: Callable[[], Awaitable[str]] | None = None) -> None:
        self.folder, self.engine, self.store, self.reload = folder, engine, store, reload
        self.db: AsyncEngine = store.engine
        self.city = store.municipality  # one database may serve several cities' workbenches
        self.files = items.Files(folder)
        # One save at a time: each validates the catalogue as the save before it left it.
        self._saving = asyncio.Lock()
        self._retrain: asyncio.Task | None = None
        self._nearest: dict[tuple[str, str], list[str]] = {}
        self._nearest_by: object = None

    @property
    def catalogue(self) -> Catalogue:
        return self.engine.catalogue

    def ref(self, kind: str, ident: str, lang: str) -> ItemRef:
        """Only what the loaded catalogue knows: any other kind, id or language is not found."""
        known = {"offer": self.catalogue.offers, "office": self.catalogue.offices,
                 "notice": self.catalogue.notices}.get(kind, {})
        if ident not in known or lang not in self.catalogue.languages:
            raise ItemNotFound(f"{kind}:{ident}:{lang}")
        return ItemRef(kind, ident, lang)

    def values(self, ref: ItemRef) -> dict[str, str]:
        return self.files.values(ref)

    async def save(self, ref: ItemRef, form: dict[str, str], base: str | None, author: str) -> Saved:
        values = items.normalise(ref, form)
        async with self._saving:
            path, _ = self.files.locate(ref)
            if not items.inside(self.folder, path):
                raise ItemNotFound(ref.key)
            before = self.values(ref)
            if base is not None and items.version(before) != base:
                return Saved(values, conflict=before)
            if values == before:
                return Saved(values, ok=True)
            german = None if ref.german else self.values(replace(ref, lang="de"))
            catalogue, problems = await asyncio.to_thread(self._check, path, ref, values, german)
            if catalogue is None:
                by_field, general = problems
                return Saved(values, problems=by_field, general=general)
            await asyncio.to_thread(items.write_atomically, path, catalogue[1])
            revision = await self._record(ref.key, author, before, values)
            self._serve(catalogue[0])
        return Saved(values, ok=True, revision=revision)

    def _check(self, path: Path, ref: ItemRef, values: dict[str, str], german: dict[str, str] | None):
        """The edited file, validated with the whole catalogue on a staged copy; the real file is
        written only when the catalogue it makes is valid."""
        text = items.edited_text(path, ref, values, german)
        with tempfile.TemporaryDirectory(prefix="workbench-") as tmp:
            staged = items.stage(self.folder, path, text, Path(tmp))
            try:
                catalogue = load_catalogue(staged)
            except CatalogueError as exc:
                return None, items.problems_by_field(ref, exc.problems, staged / path.relative_to(self.folder))
        return (replace(catalogue, folder=str(self.folder)), text), None

    def _serve(self, catalogue: Catalogue) -> None:
        """The new texts from the next message on: the ranker in use keeps ranking (the ids are
        the same), and a full reload in the background teaches it new examples."""
        self.engine.swap(catalogue, self.engine.matcher)
        if self.reload is not None:
            if self._retrain is not None and not self._retrain.done():
                self._retrain.cancel()
            self._retrain = asyncio.create_task(self._reload_later())

    async def _reload_later(self) -> None:
        await asyncio.sleep(1.0)  # several quick saves: one retraining
        with contextlib.suppress(asyncio.CancelledError):
            log.info("workbench: %s", await self.reload())

    async def _record(self, item: str, author: str, before: dict[str, str], after: dict[str, str]) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(insert(revisions).values(
                item=item, author=author, created_at=datetime.now(UTC), municipality=self.city,
                before=json.dumps(before, ensure_ascii=False), after=json.dumps(after, ensure_ascii=False)))
            return int(result.inserted_primary_key[0])

    # -- history -----------------------------------------------------------------------------
    async def history(self, ref: ItemRef) -> list[dict]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(revisions).where(revisions.c.item == ref.key, revisions.c.municipality == self.city)
                                       .order_by(revisions.c.id.desc()))).all()
        return [{"id": r.id, "author": r.author, "at": r.created_at, "diff": diff(json.loads(r.before), json.loads(r.after))}
                for r in rows]

    async def revision(self, number: int) -> tuple[ItemRef, dict[str, str]] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(revisions).where(revisions.c.id == number, revisions.c.municipality == self.city))).first()
        if row is None:
            return None
        kind, ident, lang = row.item.split(":")
        return self.ref(kind, ident, lang), json.loads(row.before)

    # -- the inbox -----------------------------------------------------------------------------
    async def inbox(self, limit: int = 30) -> list[dict]:
        decided = select(inbox_decisions.c.question_id)
        query = (select(unanswered.c.id, unanswered.c.created_at, unanswered.c.language, unanswered.c.text)
                 .where(unanswered.c.id.not_in(decided), unanswered.c.municipality == self.city).order_by(unanswered.c.id.desc()).limit(limit))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [{"id": r.id, "at": r.created_at, "lang": r.language or "de", "text": r.text} for r in rows]

    async def question(self, number: int) -> dict | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(unanswered).where(unanswered.c.id == number, unanswered.c.municipality == self.city))).first()
        return {"id": row.id, "lang": row.language or "de", "text": row.text} if row else None

    async def decided(self, number: int) -> bool:
        async with self.db.connect() as conn:
            query = select(inbox_decisions.c.question_id).where(inbox_decisions.c.question_id == number)
            return (await conn.execute(query)).first() is not None

    def nearest(self, text: str, lang: str, count: int = 3) -> list[str]:
        """The offers nearest to a question, by the ranker in use (remembered per ranker: the
        inbox shows the same questions on every visit)."""
        matcher = self.engine.matcher
        if self._nearest_by is not matcher or len(self._nearest) > 5000:
            self._nearest, self._nearest_by = {}, matcher
        key = (lang, text)
        if key not in self._nearest:
            self._nearest[key] = [m.offer for m in matcher.match(text, lang).matches[:count]]
        return self._nearest[key]

    async def decide(self, number: int, decision: str, author: str, offer: str | None = None) -> None:
        """Record the first decision about a question (a second tab's click changes nothing)."""
        async with self.db.begin() as conn:
            decided = select(inbox_decisions.c.question_id).where(inbox_decisions.c.question_id == number)
            if (await conn.execute(decided)).first():
                return
            await conn.execute(insert(inbox_decisions).values(
                question_id=number, decision=decision, offer=offer, author=author, decided_at=datetime.now(UTC)))

    async def add_example(self, number: int, offer: str, author: str) -> Saved | None:
        """The question as an example of `offer` in its language (the ranker learns it on the
        next reload); None when the question is gone (purged, or decided already)."""
        question = await self.question(number)
        if question is None or await self.decided(number):
            return None
        ref = self.ref("offer", offer, question["lang"])
        current = self.values(ref)
        examples = [line for line in current["examples"].split("\n") if line] + [question["text"]]
        saved = await self.save(ref, {**current, "examples": "\n".join(examples)}, items.version(current), author)
        if saved.ok:
            await self.decide(number, "example", author, offer=offer)
        return saved

    async def no_offer_list(self) -> list[dict]:
        """Questions marked "we have no offer for this", for the city, while they are kept
        (`privacy.retention_days`, like every unanswered question)."""
        query = (select(unanswered.c.text, unanswered.c.language, inbox_decisions.c.decided_at, inbox_decisions.c.author)
                 .join(unanswered, unanswered.c.id == inbox_decisions.c.question_id)
                 .where(inbox_decisions.c.decision == "no-offer", unanswered.c.municipality == self.city).order_by(inbox_decisions.c.decided_at.desc()))
        async with self.db.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]

    async def not_helpful(self) -> list[dict]:
        """Offers people marked "not helpful", per language, the most often first."""
        query = select(events.c.offer, events.c.language).where(events.c.kind == "feedback",
                                                                 events.c.helpful.is_(False), events.c.municipality == self.city)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        counts: dict[tuple[str, str], int] = {}
        for row in rows:
            if row.offer in self.catalogue.offers:
                key = (row.offer, row.language or "de")
                counts[key] = counts.get(key, 0) + 1
        return [{"offer": o, "lang": lang, "count": n}
                for (o, lang), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def diff(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str]]:
    """(sign, line) pairs of a field-by-field diff: '-' removed, '+' added, ' ' field name."""
    lines: list[tuple[str, str]] = []
    for key in after:
        old, new = before.get(key, ""), after.get(key, "")
        if old == new:
            continue
        lines.append((" ", key))
        for line in difflib.ndiff(old.split("\n"), new.split("\n")):
            if line[:1] in "-+":
                lines.append((line[0], line[2:]))
    return lines
