"""The dialogue engine: Incoming -> Reply, with no knowledge of any transport.

Language for a reply: what the user chose always wins; otherwise the language the message is
written in when that is clear; otherwise the language of the conversation so far; otherwise
the platform's hint; otherwise the configured default.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from bot import cards
from bot.catalogue import Catalogue
from bot.i18n import translator
from bot.languages import DEFAULT_LANGUAGE, LANGUAGES, is_rtl, native_name, normalise_code
from bot.matching import Matcher, Result
from bot.reply import (
    Asked,
    Button,
    Feedback,
    Forget,
    Incoming,
    Message,
    Referred,
    Reply,
    SetPreference,
    Subscribe,
)
from bot.text import Line, Span, bold, plain, shorten

MAX_QUESTION = 1000  # characters looked at; the rest of a very long message is ignored
SHOWN = 3  # offers per answer
CONFIDENT = 0.6  # detection confidence above which the message's language wins over the hint
# Deep-link payloads (Telegram allows 64 characters of A-Za-z0-9_-): a language, then a topic or an
# offer, then optionally the index of a district: "ar", "ar-daycare", "ar-o-kita-anmeldung", "ar-daycare_d10".
_DEEP_LINK = re.compile(r"^(?P<lang>[a-z]{2})(?:-(?:(?P<offer>o-[a-z0-9-]+)|(?P<topic>[a-z-]+)))?(?:_d(?P<district>[0-9]{1,2}))?$")
UNKNOWN_LINK = "unknown"  # what is counted for a /start argument that is not a link of ours
# A district button: its index. ASCII digits, few: "²".isdigit() is true and int() of it fails.
_DISTRICT = re.compile(r"[0-9]{1,3}")
LABEL = 60  # characters of a button label; Telegram shows less on a phone anyway


@dataclass(slots=True)
class Session:
    chosen: str | None = None  # set by the language picker; always wins
    last: str | None = None  # language of the last reply
    results: tuple[str, ...] = ()  # offers ranked for the last question, for "more"
    shown: int = 0


@dataclass(slots=True)
class Sessions:
    """In-memory sessions, the least recently used dropped beyond `limit`."""

    limit: int = 10_000
    _data: OrderedDict[str, Session] = field(default_factory=OrderedDict)

    def get(self, user: str) -> Session:
        session = self._data.pop(user, None) or Session()
        self._data[user] = session
        while len(self._data) > self.limit:
            self._data.popitem(last=False)
        return session

    def forget(self, user: str) -> None:
        self._data.pop(user, None)


def clean(text: str) -> str:
    """Drop control and bidi-override characters; keep letters, digits, punctuation, emoji."""
    kept = []
    for char in text[: MAX_QUESTION * 4]:
        category = unicodedata.category(char)
        if char in "\n\t":
            kept.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn") and char not in "\u200c\u200d":
            continue
        else:
            kept.append(char)
    return re.sub(r"\s+", " ", "".join(kept)).strip()[:MAX_QUESTION]


def _has_words(text: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in text)


class Engine:
    def __init__(self, catalogue: Catalogue, matcher: Matcher, sessions: Sessions | None = None,
                 default_language: str = DEFAULT_LANGUAGE, retention_days: int = 30) -> None:
        self.catalogue = catalogue
        self.matcher = matcher
        self.sessions = sessions or Sessions()
        self.default_language = default_language
        self.retention_days = retention_days

    def swap(self, catalogue: Catalogue, matcher: Matcher) -> None:
        """Serve a new catalogue from the next message on (a reload). Sessions keep only offer
        ids, so one that vanished is answered as a stale button."""
        self.catalogue, self.matcher = catalogue, matcher

    # -- entry point ---------------------------------------------------------------------
    def handle(self, incoming: Incoming) -> Reply:
        session = self.sessions.get(incoming.user)
        if incoming.chosen_language in LANGUAGES:
            session.chosen = incoming.chosen_language
        if incoming.payload is not None:
            return self._button(session, incoming, incoming.payload)
        text = clean(incoming.text or "")
        if text.startswith("/"):
            command, _, argument = text[1:].partition(" ")
            return self._command(session, incoming, command.split("@")[0].lower(), argument.strip())
        return self._question(session, incoming, text)

    # -- language --------------------------------------------------------------------------
    def _language(self, session: Session, incoming: Incoming, result: Result | None = None) -> str:
        if session.chosen:
            lang = session.chosen
        elif result and result.detection.language and result.detection.confidence >= CONFIDENT:
            lang = result.detection.language
        else:
            lang = (session.last or normalise_code(incoming.language_hint)
                    or (result.detection.language if result else None) or self.default_language)
        session.last = lang
        return lang

    def _reply(self, lang: str, *messages: Message, **extra) -> Reply:
        return Reply(lang, is_rtl(lang), tuple(messages), version=self.catalogue.version, **extra)

    # -- commands and buttons ----------------------------------------------------------------
    def _command(self, session: Session, incoming: Incoming, command: str, argument: str) -> Reply:
        if command == "start":
            return self._start(session, incoming, argument)
        lang = self._language(session, incoming)
        if command in ("language", "lang", "sprache"):
            if normalise_code(argument):
                return self._choose(session, normalise_code(argument) or lang)
            return self._language_picker(lang)
        if command == "topics":
            return self._topics(lang)
        if command in ("district", "stadtteil"):
            return self._district_picker(lang)
        if command in ("privacy", "datenschutz"):
            return self._privacy(lang)
        if command in ("forget", "delete"):
            self.sessions.forget(incoming.user)
            return replace(self.forget_reply(lang, "done"), effects=(Forget(),))
        return self._help(lang)

    def forget_reply(self, lang: str, outcome: str) -> Reply:
        """What /forget says: done only when the store confirmed it ("done"); otherwise that it will
        be done ("queued": kept where a crash cannot lose it) or could not be done yet ("pending")."""
        _ = translator(lang)
        if outcome == "done":
            text = _("Done: I deleted everything I kept about you (language, district, news subscriptions).")
        elif outcome == "queued":
            text = _("I will delete everything I kept about you (language, district, news subscriptions) as soon as my database answers again. Until then I no longer use any of it.")
        else:
            text = _("I could not delete what I keep about you yet: my database does not answer. I no longer use any of it and keep trying; to be sure, please send /forget again later.")
        return self._reply(lang, Message(((plain(text),),)))

    def _button(self, session: Session, incoming: Incoming, payload: str) -> Reply:
        kind, _, rest = payload.partition(":")
        if kind == "lang" and rest in LANGUAGES:
            return self._choose(session, rest)
        lang = self._language(session, incoming)
        if kind == "t" and rest in self.catalogue.topics:
            return self._topic(session, lang, rest, subscribed=rest in incoming.topics)
        if kind == "o":
            ident, _, action = rest.partition(":")
            if ident in self.catalogue.offers:
                return self._offer_action(session, lang, ident, action or "card")
        if kind == "more":
            return self._more(session, lang)
        if kind == "d" and (rest == "-" or (_DISTRICT.fullmatch(rest) and int(rest) < len(self.catalogue.districts))):
            return self._set_district(lang, rest)
        if kind == "share":
            deep = _DEEP_LINK.match(rest)
            if deep and deep["offer"] and deep["offer"][2:] in self.catalogue.offers:
                return self._share(deep["lang"] if deep["lang"] in LANGUAGES else lang, deep["offer"][2:])
        if kind == "sub":
            topic, _, on = rest.partition(":")
            if topic in self.catalogue.topics:
                return self._subscribe(lang, topic, on == "1")
        if kind == "fb":
            ident, _, value = rest.partition(":")
            if ident in self.catalogue.offers:
                _ = translator(lang)
                effect = Feedback(ident, self.catalogue.offers[ident].topic, value == "1", lang)
                return self._reply(lang, Message(((plain(_("Thank you for your feedback!")),),)), effects=(effect,))
        if kind == "menu":
            return self._topics(lang) if rest == "topics" else self._language_picker(lang)
        _ = translator(lang)
        return self._reply(lang, Message(((plain(_("This button is no longer valid. Please ask your question again.")),),),
                                         cards.topic_buttons(self.catalogue, lang)))

    def _start(self, session: Session, incoming: Incoming, argument: str) -> Reply:
        reply = self._deep_link(session, incoming, argument) if 0 < len(argument) <= 64 else None
        if reply is not None:  # one of our links: made of catalogue ids only, so it is kept as it is
            return replace(reply, effects=(*reply.effects, Referred(argument, True, reply.language)))
        reply = self._welcome(session, incoming)
        if argument:  # not one of our links: a normal start, counted without what was typed (a name, a number)
            return replace(reply, effects=(Referred(UNKNOWN_LINK, False, reply.language),))
        return reply

    def _deep_link(self, session: Session, incoming: Incoming, argument: str) -> Reply | None:
        """`ar`, `ar-daycare` or `ar-o-kita-anmeldung`: language, then a topic or an offer."""
        deep = _DEEP_LINK.match(argument)
        if not deep or deep["lang"] not in LANGUAGES:
            return None
        offer = deep["offer"][2:] if deep["offer"] else None
        if (offer and offer not in self.catalogue.offers) or (deep["topic"] and deep["topic"] not in self.catalogue.topics):
            return None
        district = None
        if deep["district"] is not None:
            if int(deep["district"]) >= len(self.catalogue.districts):
                return None
            district = self.catalogue.districts[int(deep["district"])]
        reply = self._choose(session, deep["lang"])
        lang = deep["lang"]
        if offer:
            reply = self._offer_action(session, lang, offer, "card")
        elif deep["topic"]:
            reply = self._topic(session, lang, deep["topic"], subscribed=deep["topic"] in incoming.topics)
        return replace(reply, effects=(SetPreference(language=lang, district=district),))

    def _welcome(self, session: Session, incoming: Incoming) -> Reply:
        lang = self._language(session, incoming)
        _ = translator(lang)
        lines: list[Line] = [
            (bold(_("Hello! I am the Bildungslotse.")),),
            (plain(_("I help newcomers in {city} find German courses, daycare, school, training and work, offers for parents, recognition of qualifications and counselling.").format(city=self.catalogue.municipality)),),
            (plain(_("Write your question in your language, or choose a topic:")),),
        ]
        buttons = (*cards.topic_buttons(self.catalogue, lang), (cards.language_button(_),))
        return self._reply(lang, Message(tuple(lines), buttons))

    def _help(self, lang: str) -> Reply:
        _ = translator(lang)
        lines: list[Line] = [
            (bold(_("How I can help")),),
            (plain(_("Write your question in your own words and in your language, for example: “Where can I find a German course?”")),),
            (plain(_("I answer with offers in {city} and the office that helps, with address, opening hours and phone.").format(city=self.catalogue.municipality)),),
            (plain(_("Choose a topic to see all its offers, or change the language.")),),
            (plain(_("Commands: /topics, /language, /district (offers near you), /privacy (what I keep), /forget (delete it).")),),
        ]
        buttons = (*cards.topic_buttons(self.catalogue, lang), (cards.language_button(_),))
        return self._reply(lang, Message(tuple(lines), buttons))

    def _language_picker(self, lang: str) -> Reply:
        _ = translator(lang)
        buttons = [Button(native_name(code), f"lang:{code}") for code in self.catalogue.languages]
        rows = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
        return self._reply(lang, Message(((plain(_("Choose your language:")),),), rows))

    def _choose(self, session: Session, lang: str) -> Reply:
        session.chosen = session.last = lang
        _ = translator(lang)
        line = (plain(_("From now on I answer in {language}.").format(language=native_name(lang))),)
        hint = (plain(_("Write your question in your language, or choose a topic:")),)
        return self._reply(lang, Message((line, hint), cards.topic_buttons(self.catalogue, lang)),
                           effects=(SetPreference(language=lang),))

    def _share(self, lang: str, ident: str) -> Reply:
        """Where a platform has no share links: the offer as text to forward."""
        _ = translator(lang)
        offer = self.catalogue.offers[ident]
        office = self.catalogue.office_of(offer)
        lines = [(plain(_("Forward this to someone it can help:")),), *cards.offer_lines(offer, office, lang, _)]
        return self._reply(lang, Message(tuple(lines)))

    def _district_picker(self, lang: str) -> Reply:
        _ = translator(lang)
        line = (plain(_("Which part of {city} do you live in? I will show offers near you first.").format(
            city=self.catalogue.municipality)),)
        buttons = [Button(name, f"d:{i}") for i, name in enumerate(self.catalogue.districts)]
        rows = [tuple(buttons[i:i + 3]) for i in range(0, len(buttons), 3)]
        rows.append((Button(_("Whole city"), "d:-"),))
        return self._reply(lang, Message((line,), tuple(rows)))

    def _set_district(self, lang: str, value: str) -> Reply:
        _ = translator(lang)
        if value != "-":
            district = self.catalogue.districts[int(value)]
            line = _("I will show offers in {district} first.").format(district=district)
            effect = SetPreference(district=district)
        else:
            line = _("I will show offers of the whole city.")
            effect = SetPreference(clear_district=True)
        return self._reply(lang, Message(((plain(line),),), cards.topic_buttons(self.catalogue, lang)), effects=(effect,))

    def _subscribe(self, lang: str, topic: str, on: bool) -> Reply:
        _ = translator(lang)
        name = self.catalogue.topics[topic].name(lang)
        text = (_("You will get news about {topic}.") if on else _("You will no longer get news about {topic}.")).format(topic=name)
        return self._reply(lang, Message(((plain(text),),)), effects=(Subscribe(topic, on),))

    def _privacy(self, lang: str) -> Reply:
        _ = translator(lang)
        lines: list[Line] = [
            (bold(_("What I keep about you")),),
            (plain("• " + _("The language you chose, the part of the city you told me and the topics you get news about, under a code that contains neither your name nor your account. I keep them until you delete them.")),),
            (plain("• " + _("To send you news, the address of this chat, encrypted, for as long as you get news.")),),
            (plain("• " + _("Questions I could not answer, without phone numbers, e-mail addresses or long numbers, for {days} days, so that editors can add what is missing.").format(days=self.retention_days)),),
            (plain("• " + _("Anonymous figures for the city's education monitoring: the day, the language and the topic of a question, whether an offer fitted, and your feedback. They contain nothing about you.")),),
            (plain(_("Send /forget to delete everything I keep about you at once.")),),
        ]
        return self._reply(lang, Message(tuple(lines)))

    def _topics(self, lang: str) -> Reply:
        _ = translator(lang)
        return self._reply(lang, Message(((plain(_("Choose a topic:")),),), cards.topic_buttons(self.catalogue, lang)))

    def _topic(self, session: Session, lang: str, topic: str, subscribed: bool = False) -> Reply:
        _ = translator(lang)
        offers = self.catalogue.by_topic[topic]
        session.results, session.shown = offers, 0
        name = self.catalogue.topics[topic].name(lang)
        lines: list[Line] = [(bold(name),), (plain(_("Choose an offer:")),)]
        buttons = [(Button(shorten(self.catalogue.offers[i].text(lang).title, LABEL), f"o:{i}:card"),) for i in offers]
        if subscribed:
            buttons.append((Button(_("🔕 Stop news about this topic"), f"sub:{topic}:0"),))
        else:
            buttons.append((Button(_("🔔 News about this topic"), f"sub:{topic}:1"),))
        return self._reply(lang, Message(tuple(lines), tuple(buttons)), category=topic)

    # -- offers ----------------------------------------------------------------------------
    def _card(self, lang: str, ident: str) -> Message:
        _ = translator(lang)
        offer = self.catalogue.offers[ident]
        office = self.catalogue.office_of(offer)
        lines = cards.offer_lines(offer, office, lang, _)
        if offer.text(lang).status == "draft" and lang != "de":
            lines.append((Span(_("Draft translation, not yet checked by a native speaker."), "italic"),))
        feedback = (Button(_("👍 Helpful"), f"fb:{ident}:1"), Button(_("👎 Not helpful"), f"fb:{ident}:0"))
        return Message(tuple(lines), (*cards.offer_buttons(offer, office, lang, _), feedback))

    def _offer_action(self, session: Session, lang: str, ident: str, action: str) -> Reply:
        _ = translator(lang)
        offer = self.catalogue.offers[ident]
        office = self.catalogue.office_of(offer)
        back = cards.offer_buttons(offer, office, lang, _)
        if action == "contact":
            lines = [(bold(offer.text(lang).title),), *cards.office_lines(office, lang, _)]
            return self._reply(lang, Message(tuple(lines), back))
        if action == "bring":
            return self._reply(lang, Message(tuple(cards.bring_lines(offer, lang, _)), back))
        if action == "desk":
            return self._reply(lang, Message(tuple(cards.desk_lines(offer, lang, _)), back))
        if action == "map":
            lines, location = cards.map_lines(office, lang, _)
            return self._reply(lang, Message(tuple(lines), back, location))
        if action == "more":
            others = tuple(i for i in self.catalogue.by_topic[offer.topic] if i != ident)
            session.results, session.shown = others, 0
            return self._more(session, lang)
        return self._reply(lang, self._card(lang, ident), category=offer.topic)

    def _more(self, session: Session, lang: str, intro: str | None = None, feedback: bool = False) -> Reply:
        """The next offers of the current list as one message: compact cards, numbered, with a
        button each that opens the full card (contact, map, what to bring, desk sentence).
        One message per answer keeps a chat readable and within the platforms' flood limits."""
        _ = translator(lang)
        batch = session.results[session.shown: session.shown + SHOWN]
        if not batch:
            return self._reply(lang, Message(((plain(_("There are no more offers for this. Choose a topic:")),),),
                                             cards.topic_buttons(self.catalogue, lang)))
        start = session.shown
        session.shown += len(batch)
        lines: list[Line] = [(plain(intro),), ()] if intro else []
        rows: list[tuple[Button, ...]] = []
        draft = False
        for number, ident in enumerate(batch, start=start + 1):
            offer = self.catalogue.offers[ident]
            if number > start + 1:
                lines.append(())
            card = cards.offer_lines(offer, self.catalogue.office_of(offer), lang, _)
            lines.append((plain(f"{number}. "), *card[0]))
            lines.extend(card[1:])
            rows.append((Button(shorten(f"{number}. {offer.text(lang).title}", LABEL), f"o:{ident}:card"),))
            draft = draft or (lang != "de" and offer.text(lang).status == "draft")
        if draft:
            lines += [(), (Span(_("Draft translation, not yet checked by a native speaker."), "italic"),)]
        if session.shown < len(session.results):
            rows.append((Button(_("More offers"), "more:"),))
        if feedback:
            top = batch[0]
            rows.append((Button(_("👍 Helpful"), f"fb:{top}:1"), Button(_("👎 Not helpful"), f"fb:{top}:0")))
        return self._reply(lang, Message(tuple(lines), tuple(rows)))

    # -- questions -------------------------------------------------------------------------
    def _question(self, session: Session, incoming: Incoming, text: str) -> Reply:
        if not _has_words(text):
            lang = self._language(session, incoming)
            _ = translator(lang)
            line = (plain(_("Please write your question in words, for example: “Where can I find a German course?”")),)
            return self._reply(lang, Message((line,), cards.topic_buttons(self.catalogue, lang)), answered=None)
        near = (incoming.district,) if incoming.district else ()
        result = self.matcher.match(text, session.chosen, districts=near)
        lang = self._language(session, incoming, result)
        _ = translator(lang)
        if not result.fits:
            reply = self._nothing_fits(session, lang, result)
            return replace(reply, effects=(Asked(lang, None, None, False, text),))
        ranked = tuple(m.offer for m in result.matches)
        session.results, session.shown = ranked, 0
        reply = self._more(session, lang, intro=_("This is what fits your question best:"), feedback=True)
        asked = Asked(lang, result.category, ranked[0], True, text)
        return replace(reply, category=result.category, matches=result.matches, answered=True, effects=(asked,))

    def _nothing_fits(self, session: Session, lang: str, result: Result) -> Reply:
        _ = translator(lang)
        session.results, session.shown = (), 0
        lines: list[Line] = [
            (bold(_("Sorry, I don't know an offer that fits your question.")),),
            (plain(_("The free migration counselling can help you with any question:")),),
            (),
        ]
        for ident in self.catalogue.fallback_offers[:1]:
            offer = self.catalogue.offers[ident]
            lines += cards.offer_lines(offer, self.catalogue.office_of(offer), lang, _)
        lines += [(), (plain(_("Or choose a topic:")),)]
        return Reply(lang, is_rtl(lang), (Message(tuple(lines), cards.topic_buttons(self.catalogue, lang)),),
                     category=None, matches=result.matches, answered=False, version=self.catalogue.version)
