"""The engine with memory: loads a person's stored preferences into each Incoming and applies
the effects of each Reply to the store. Transports talk to this, not to the engine directly."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.engine import Engine
from bot.reply import Asked, Feedback, Forget, Incoming, Referred, Reply, SetPreference, Subscribe
from bot.store import Store
from bot.store.store import UNSET

log = logging.getLogger(__name__)


class Service:
    def __init__(self, engine: Engine, store: Store | None, transport: str) -> None:
        self.engine = engine
        self.store = store
        self.transport = transport

    async def handle(self, platform_id: str | int, incoming: Incoming, address: str | None = None) -> Reply:
        """Answer one thing a person did. `platform_id` is pseudonymised here and goes no further;
        `address` is where news for this person would go (their chat), kept only if they subscribe."""
        store = self.store
        if store is None:
            return self.engine.handle(replace(incoming, user=f"{self.transport}:{platform_id}"))
        key = store.key(self.transport, platform_id)
        prefs = await store.prefs(key)
        incoming = replace(incoming, user=key, chosen_language=incoming.chosen_language or prefs.language,
                           district=prefs.district, topics=prefs.topics)
        reply = self.engine.handle(incoming)
        for effect in reply.effects:
            outcome = await self._apply(key, effect, address or str(platform_id))
            if isinstance(effect, Forget) and outcome != "done":  # say done only when it is
                reply = replace(self.engine.forget_reply(reply.language, outcome), effects=reply.effects)
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
