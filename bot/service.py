"""The engine with memory: loads a person's stored preferences into each Incoming and applies
the effects of each Reply to the store. Transports talk to this, not to the engine directly."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.engine import Engine
from bot.handover.cases import Case, CaseStore
from bot.reply import (
    Asked,
    EndHandover,
    Feedback,
    Forget,
    HandOver,
    Incoming,
    Referred,
    Reply,
    SetPreference,
    Subscribe,
    ToCounsellor,
)
from bot.store import Store
from bot.store.store import UNSET

log = logging.getLogger(__name__)


class Service:
    def __init__(self, engine: Engine, store: Store | None, transport: str, cases: CaseStore | None = None) -> None:
        self.engine = engine
        self.store = store
        self.transport = transport
        self.cases = cases  # the counsellor handover (bot/handover); None: off

    async def handle(self, platform_id: str | int, incoming: Incoming, address: str | None = None) -> Reply:
        """Answer one thing a person did. `platform_id` is pseudonymised here and goes no further;
        `address` is where news for this person would go (their chat), kept only if they subscribe."""
        store = self.store
        if store is None:
            return self.engine.handle(replace(incoming, user=f"{self.transport}:{platform_id}"))
        key = store.key(self.transport, platform_id)
        prefs = await store.prefs(key)
        case = await self._case(key)
        incoming = replace(incoming, user=key, chosen_language=incoming.chosen_language or prefs.language,
                           district=prefs.district, topics=prefs.topics, with_counsellor=case is not None)
        reply = self.engine.handle(incoming)
        for effect in reply.effects:
            if isinstance(effect, HandOver | ToCounsellor | EndHandover):
                reply = await self._handover(key, case, effect, reply, address or str(platform_id))
                continue
            outcome = await self._apply(key, effect, address or str(platform_id))
            if isinstance(effect, Forget) and outcome != "done":  # say done only when it is
                reply = replace(self.engine.forget_reply(reply.language, outcome), effects=reply.effects)
        return reply

    async def _case(self, key: str) -> Case | None:
        if self.cases is None:
            return None
        try:
            return await self.cases.active(key)
        except Exception as exc:  # noqa: BLE001 - the bot answers on; the case waits in the database
            log.warning("handover: cannot read cases (%s)", type(exc).__name__)
            return None

    async def _handover(self, key: str, case: Case | None, effect, reply: Reply, address: str) -> Reply:
        """Store what the newcomer agreed to: the case, a message for the counsellor, the end.
        Stored before the newcomer is told, so a restart loses none of it."""
        cases, lang = self.cases, reply.language
        if cases is None:
            return reply
        try:
            match effect:
                case HandOver(language=language, topic=topic, question=question, offers=offers):
                    opened = await cases.open(key, self.transport, address, language, topic, question, offers)
                    return replace(self.engine.handed_over(lang, opened.number, question is not None), effects=reply.effects)
                case ToCounsellor(text=text) if case is not None:
                    await cases.relay_from_newcomer(case, text)
                case EndHandover() if case is not None:
                    await cases.close(case, "newcomer")
        except Exception as exc:  # noqa: BLE001 - the database did not take it: say so, nothing half-done
            log.warning("handover: could not store (%s: %s)", type(exc).__name__, exc)
            return replace(self.engine.handed_over(lang, None, False), effects=reply.effects)
        return reply

    async def _apply(self, key: str, effect, address: str) -> str | None:
        store = self.store
        assert store is not None
        match effect:
            case SetPreference(language=language, district=district, clear_district=clear):
                await store.set_prefs(key, language=language or UNSET,
                                      district=None if clear else (district or UNSET))
            case Subscribe(topic=topic, on=on):
                await store.subscribe(key, topic, self.transport, address, on)
            case Forget():
                if self.cases is not None:
                    try:
                        await self.cases.forget(key)
                    except Exception as exc:  # noqa: BLE001 - then /forget does not say "done"
                        log.warning("handover: cannot forget cases (%s)", type(exc).__name__)
                        await store.forget(key)
                        return "pending"
                return await store.forget(key)
            case Asked(language=language, topic=topic, offer=offer, answered=answered, text=text):
                store.record("question", self.transport, language, topic, offer, answered)
                if not answered:
                    store.keep_unanswered(language, text)
            case Feedback(offer=offer, topic=topic, helpful=helpful, language=language):
                store.record("feedback", self.transport, language, topic, offer, helpful=helpful)
            case Referred(payload=payload, known=known, language=language):
                store.count_referral(payload, known)
                store.record("start", self.transport, language, payload=payload[:64])
        return None
