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

from bot import cards, clarify, firststeps
from bot.catalogue import Catalogue
from bot.handover import dialogue as handover
from bot.handover.detect import asks_for_person, asks_only_for_person
from bot.i18n import translator
from bot.languages import DEFAULT_LANGUAGE, LANGUAGES, is_rtl, native_name, normalise_code
from bot.matching import Matcher, Result
from bot.matching.detect import same_script
from bot.reply import (
    Asked,
    Button,
    EndHandover,
    Feedback,
    Forget,
    HandOver,
    Incoming,
    Message,
    Referred,
    Reply,
    SetPreference,
    Subscribe,
    ToCounsellor,
)
from bot.text import Line, Span, bold, plain

MAX_QUESTION = 1000  # characters looked at; the rest of a very long message is ignored
SHOWN = 5  # offers per list ("more like this", a topic's offers are all listed)
ALSO = 2  # other fitting offers shown as buttons under an answer
CONFIDENT = 0.6  # detection confidence above which the message's language wins over the hint
GUESS = 0.45  # below this, a detection is a guess ("Kita" alone)
# Deep-link payloads (Telegram allows 64 characters of A-Za-z0-9_-): a language, then a topic or an
# offer, then optionally the index of a district: "ar", "ar-daycare", "ar-o-kita-anmeldung", "ar-daycare_d10".
_DEEP_LINK = re.compile(r"^(?P<lang>[a-z]{2})(?:-(?:(?P<offer>o-[a-z0-9-]+)|(?P<topic>[a-z-]+)))?(?:_d(?P<district>[0-9]{1,2}))?$")
UNKNOWN_LINK = "unknown"  # what is counted for a /start argument that is not a link of ours
# A district button: its index. ASCII digits, few: "²".isdigit() is true and int() of it fails.
_DISTRICT = re.compile(r"[0-9]{1,3}")


@dataclass(slots=True)
class Session:
    chosen: str | None = None  # set by the language picker; always wins
    last: str | None = None  # language of the last reply
    results: tuple[str, ...] = ()  # offers ranked for the last question, for "more"
    shown: int = 0
    ages: tuple[float, ...] = ()  # ages the last question stated (a card says whether they fit)
    pending: str | None = None  # the kind of the question asked back ("who", "age", "topic")
    steps: firststeps.Answers | None = None  # answers to the first-steps questions so far
    question: str = ""  # the last question, shared with a counsellor only if the person agrees
    topic: str | None = None  # the topic decided for it
    handover: handover.Pending | None = None  # a counsellor offered, consent not yet given


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
                 default_language: str = DEFAULT_LANGUAGE, retention_days: int = 30,
                 desk: handover.Desk | None = None) -> None:
        self.catalogue = catalogue
        self.matcher = matcher
        self.sessions = sessions or Sessions()
        self.default_language = default_language
        self.retention_days = retention_days
        self.desk = desk  # the counsellors' desk (bot/handover); None: no handover offered

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
        if incoming.with_counsellor and self.desk and _has_words(text) and not text.startswith("/"):
            return self._reply(self._language(session, incoming), effects=(ToCounsellor(text),))
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
            detected = result.detection if result else None
            # A weak guess among the languages of the default's script ("Kita": German? Romanian?)
            # yields to the default; in another script (Cyrillic "привет") it is still the best bet.
            guessed = detected.language if detected and detected.language and (
                detected.confidence >= GUESS or not same_script(detected.language, self.default_language)) else None
            lang = session.last or normalise_code(incoming.language_hint) or guessed or self.default_language
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
        if command in ("stop", "end"):
            return self._end_handover(lang, incoming)
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
        if kind == "cl":
            return self._clarified(session, lang, rest)
        if kind == "fs":
            return self._first_steps(session, lang, rest)
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
                person = self._person_button(session, lang, self.catalogue.offers[ident].topic) if value != "1" else ()
                return self._reply(lang, Message(((plain(_("Thank you for your feedback!")),),), person), effects=(effect,))
        if kind == "menu":
            return self._topics(lang) if rest == "topics" else self._language_picker(lang)
        if kind == "hv" and self.desk:
            return self._handover_button(session, incoming, lang, payload)
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
        buttons = (*self._first_steps_button(_), *cards.topic_buttons(self.catalogue, lang), (cards.language_button(_),))
        return self._reply(lang, Message(tuple(lines), buttons))

    def _first_steps_button(self, _) -> tuple[tuple[Button, ...], ...]:
        if not self.catalogue.first_steps.available:
            return ()
        return ((Button("🧭 " + _("I'm new – where do I start?"), "fs:start"),),)

    def _help(self, lang: str) -> Reply:
        _ = translator(lang)
        lines: list[Line] = [
            (bold(_("How I can help")),),
            (plain(_("Write your question in your own words and in your language, for example: “Where can I find a German course?”")),),
            (plain(_("I answer with the offer in {city} that fits best and the first step to take; the office's contact, the way there and what to bring are one button away.").format(city=self.catalogue.municipality)),),
            (plain(_("Choose a topic to see all its offers, or change the language.")),),
            (plain(_("Commands: /topics, /language, /district (offers near you), /privacy (what I keep), /forget (delete it).")),),
        ]
        person: tuple[tuple[Button, ...], ...] = ()
        if self.desk:
            lines.append(handover.help_line(lang))
            person = (self.desk.button(lang),)
        buttons = (*self._first_steps_button(_), *cards.topic_buttons(self.catalogue, lang), (cards.language_button(_),), *person)
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
        lines = [(plain(_("Forward this to someone it can help:")),), *cards.offer_lines(offer, self.catalogue, lang, _),
                 *cards.office_lines(office, lang, _)]
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
            *([(plain("• " + _("When you talk to a counsellor: your question, your language and your messages, and the address of this chat, encrypted, until {days} days after the conversation ended.").format(days=self.retention_days)),)] if self.desk else []),
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
        buttons = [(cards.offer_button(self.catalogue, i, lang),) for i in offers]
        if subscribed:
            buttons.append((Button(_("🔕 Stop news about this topic"), f"sub:{topic}:0"),))
        else:
            buttons.append((Button(_("🔔 News about this topic"), f"sub:{topic}:1"),))
        return self._reply(lang, Message(tuple(lines), tuple(buttons)), category=topic)

    # -- offers ----------------------------------------------------------------------------
    def _card(self, lang: str, ident: str, others: tuple[str, ...] = (), ages: tuple[float, ...] = ()) -> Message:
        """The one-screen answer: the offer, its next step, its buttons, and the other offers that
        fit as buttons ("Also: …") instead of more text."""
        _ = translator(lang)
        offer = self.catalogue.offers[ident]
        office = self.catalogue.office_of(offer)
        lines = cards.offer_lines(offer, self.catalogue, lang, _, ages)
        if offer.text(lang).status == "draft" and lang != "de":
            lines.append((Span(_("Draft translation, not yet checked by a native speaker."), "italic"),))
        feedback = (Button(_("👍 Helpful"), f"fb:{ident}:1"), Button(_("👎 Not helpful"), f"fb:{ident}:0"))
        return Message(tuple(lines), (*cards.offer_buttons(offer, office, lang, _),
                                      *cards.also_buttons(self.catalogue, others, lang, _), feedback))

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
        if action == "details":
            return self._reply(lang, Message(tuple(cards.details_lines(offer, self.catalogue, lang, _)), back))
        if action == "desk":
            return self._reply(lang, Message(tuple(cards.desk_lines(offer, lang, _)), back))
        if action == "map":
            lines, location = cards.map_lines(office, lang, _)
            return self._reply(lang, Message(tuple(lines), back, location))
        if action == "more":
            others = tuple(i for i in self.catalogue.by_topic[offer.topic] if i != ident)
            session.results, session.shown = others, 0
            return self._more(session, lang)
        return self._reply(lang, self._card(lang, ident, ages=session.ages), category=offer.topic)

    def _more(self, session: Session, lang: str, intro: str | None = None) -> Reply:
        """The next offers of the current list as one short message: a line each (title and
        for whom), and a button each that opens its card."""
        _ = translator(lang)
        batch = session.results[session.shown: session.shown + SHOWN]
        if not batch:
            return self._reply(lang, Message(((plain(_("There are no more offers for this. Choose a topic:")),),),
                                             cards.topic_buttons(self.catalogue, lang)))
        start = session.shown
        session.shown += len(batch)
        lines: list[Line] = [(plain(intro),)] if intro else []
        rows: list[tuple[Button, ...]] = []
        for number, ident in enumerate(batch, start=start + 1):
            text = self.catalogue.offers[ident].text(lang)
            lines.append((plain(f"{number}. "), bold(text.title), plain(f" – {text.who}")))
            rows.append((cards.offer_button(self.catalogue, ident, lang, f"{number}. "),))
        if session.shown < len(session.results):
            rows.append((Button(_("More offers"), "more:"),))
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
        if asks_for_person(text):  # "can I talk to a real person?"
            if self.desk:  # offer one, share nothing yet
                session.handover = handover.Pending(session.question or None, session.topic, session.results[:3])
                return replace(self._reply(lang, self.desk.offer(lang)), answered=None)
            if asks_only_for_person(text, self.matcher.function_words) and not (
                    result.fits and self._counselling(result.matches[0].offer)):
                # No desk here: the people of the free migration counselling, not a course that
                # happens to share words with the question.
                return replace(self._nothing_fits(session, lang, result, sorry=False), answered=None)
        session.question, session.topic = text, result.category
        if not result.fits:
            reply = self._nothing_fits(session, lang, result)
            return replace(reply, effects=(Asked(lang, None, None, False, text),))
        ranked = tuple(m.offer for m in result.matches)
        session.results, session.shown, session.ages, session.pending = ranked, 1, result.people.ages, None
        question = clarify.needed(result, self.catalogue)
        if question is not None:
            session.pending = question.kind
            reply = self._ask_back(lang, question)
        else:
            reply = self._answer(session, lang)
        asked = Asked(lang, result.category, ranked[0], True, text)
        return replace(reply, category=result.category, matches=result.matches, answered=True, effects=(asked,))

    def _answer(self, session: Session, lang: str) -> Reply:
        top, others = session.results[0], session.results[1:1 + ALSO]
        offer = self.catalogue.offers[top]
        return self._reply(lang, self._card(lang, top, others, session.ages), category=offer.topic)

    def _ask_back(self, lang: str, question: clarify.Clarification) -> Reply:
        _ = translator(lang)
        if question.kind == "topic":
            line = _("Is your question about one of these topics?")
            labels = [f"{self.catalogue.topics[t].icon} {self.catalogue.topics[t].name(lang)}".strip() for t in question.options]
        elif question.kind == "who":
            line = _("Is it for you or for your child?")
            labels = [_("For me"), _("For my child")]
        else:
            line = _("How old is your child?")
            labels = [_("{low}–{high} years").format(low=band.split("-")[0], high=band.split("-")[1]) for band in question.options]
        buttons = tuple((Button(label, f"cl:{question.kind}:{value}"),) for label, value in zip(labels, question.options, strict=True))
        return self._reply(lang, Message(((plain(line),),), buttons))

    def _clarified(self, session: Session, lang: str, answer: str) -> Reply:
        """The answer to the question asked back: the offers found narrowed to it, then the
        answer (never a second question)."""
        kind, _, value = answer.partition(":")
        if session.pending != kind or not session.results:
            return self._stale(lang)
        session.pending = None
        session.results = clarify.narrow(session.results, kind, value, self.catalogue)
        if kind == "age" and value.replace("-", "").isdigit():
            low, high = (int(v) for v in value.split("-"))
            session.ages = ((low + high) / 2,)
        session.shown = 1
        return self._answer(session, lang)

    def _first_steps(self, session: Session, lang: str, step: str) -> Reply:
        """I'm new: who came, German, what next; then the personal checklist."""
        _ = translator(lang)
        kind, _sep, value = step.partition(":")
        if kind == "start" or session.steps is None:
            session.steps = firststeps.Answers()
            buttons = ((Button(_("Only adults"), "fs:who:adults"),), (Button(_("Adults and children"), "fs:who:children"),))
            return self._reply(lang, Message(((bold(_("Your first steps in {city}").format(city=self.catalogue.municipality)),),
                                              (plain(_("Three short questions, then you get a list of what to do first, in order.")),),
                                              (plain(_("Who came to {city}?").format(city=self.catalogue.municipality)),)),
                                             buttons))
        answers = session.steps
        if kind == "who" and value == "children" or kind == "age":
            answers.with_children = True
            if kind == "age" and value in firststeps.bands(self.catalogue):
                answers.children ^= {value}
            rows = [(Button(("✓ " if band in answers.children else "") + _("{low}–{high} years").format(
                low=band.split("-")[0], high=band.split("-")[1]), f"fs:age:{band}"),) for band in firststeps.bands(self.catalogue)]
            rows.append((Button(_("Done"), "fs:german:"),))
            return self._reply(lang, Message(((plain(_("How old are the children? Choose all that apply, then “Done”.")),),),
                                             tuple(rows)))
        if kind in ("who", "german") and not value:
            levels = (("none", _("No German yet")), ("some", _("A little (A1–A2)")), ("good", _("Good (B1 or more)")),
                      ("reading", _("I can hardly read and write")))
            return self._reply(lang, Message(((plain(_("How much German do you speak?")),),),
                                             tuple((Button(label, f"fs:level:{key}"),) for key, label in levels)))
        if kind == "who":  # adults only
            return self._first_steps(session, lang, "german:")
        if kind == "level":
            answers.german = value
            goals = (("work", _("Work")), ("training", _("An apprenticeship or a school certificate")),
                     ("study", _("Study at a university")), ("family", _("First settle in with my family")))
            return self._reply(lang, Message(((plain(_("What do you want to do next?")),),),
                                             tuple((Button(label, f"fs:goal:{key}"),) for key, label in goals)))
        if kind == "goal":
            return self._checklist(session, lang, value)
        return self._stale(lang)

    def _checklist(self, session: Session, lang: str, goal: str) -> Reply:
        _ = translator(lang)
        answers = session.steps or firststeps.Answers()
        headings = {
            "counselling": _("Free migration counselling helps you step by step (from 27: MBE; 12 to 27: JMD)"),
            "german": _("A German course"),
            "goal:work": _("Work and the recognition of your qualifications"),
            "goal:training": _("An apprenticeship or a school certificate"),
            "goal:study": _("Studying at a university"),
            "goal:family": _("Offers for families"),
        }
        lines: list[Line] = [(bold(_("Your first steps, in this order:")),)]
        rows: list[tuple[Button, ...]] = []
        items = firststeps.checklist(self.catalogue, answers, goal)
        for number, (key, offers) in enumerate(items, start=1):
            if key.startswith("children:"):
                low, high = key.split(":")[1].split("-")
                heading = _("For your children aged {low} to {high}").format(low=low, high=high)
            else:
                heading = headings.get(key, key)
            lines.append((plain(f"{number}. {heading}"),))
            rows.append(tuple(cards.offer_button(self.catalogue, o, lang, f"{number}. ") for o in offers[:2]))
        session.steps = None
        session.results, session.shown = tuple(o for _key, offers in items for o in offers), 0
        return self._reply(lang, Message(tuple(lines), tuple(rows)))

    def _stale(self, lang: str) -> Reply:
        _ = translator(lang)
        return self._reply(lang, Message(((plain(_("This button is no longer valid. Please ask your question again.")),),),
                                         cards.topic_buttons(self.catalogue, lang)))

    def _counselling(self, offer: str) -> bool:
        """The offer is of a topic of the catalogue's fallback offers (people who advise)."""
        return self.catalogue.offers[offer].topic in {self.catalogue.offers[o].topic for o in self.catalogue.fallback_offers}

    def _nothing_fits(self, session: Session, lang: str, result: Result, sorry: bool = True) -> Reply:
        _ = translator(lang)
        session.results, session.shown = (), 0
        lines: list[Line] = [
            *([(bold(_("Sorry, I don't know an offer that fits your question.")),)] if sorry else []),
            (plain(_("The free migration counselling can help you with any question:")),),
        ]
        rows = [(cards.offer_button(self.catalogue, ident, lang),) for ident in self.catalogue.fallback_offers[:2]]
        rows.extend(self._person_button(session, lang, None))
        lines.append((plain(_("Or choose a topic:")),))
        return Reply(lang, is_rtl(lang), (Message(tuple(lines), (*rows, *cards.topic_buttons(self.catalogue, lang))),),
                     category=None, matches=result.matches, answered=False, version=self.catalogue.version)

    # -- a person when the bot is not enough (bot/handover) ----------------------------------
    def _person_button(self, session: Session, lang: str, topic: str | None) -> tuple[tuple[Button, ...], ...]:
        """"Talk to a person" under an answer that did not help; what it would share is noted."""
        if not self.desk:
            return ()
        session.handover = handover.Pending(session.question or None, topic or session.topic, session.results[:3])
        return (self.desk.button(lang),)

    def _handover_button(self, session: Session, incoming: Incoming, lang: str, payload: str) -> Reply:
        assert self.desk is not None
        if payload == handover.OFFER:
            if incoming.with_counsellor:
                return self._reply(lang, Message(((plain(translator(lang)("This button is no longer valid. Please ask your question again.")),),),
                                                 (self.desk.end_button(lang),)))
            session.handover = session.handover or handover.Pending(session.question or None, session.topic, ())
            return self._reply(lang, self.desk.offer(lang))
        if payload == handover.YES and not incoming.with_counsellor:
            # After a restart the offer's context is gone; the consent stands, the question follows.
            pending = session.handover or handover.Pending(None, None, ())
            session.handover = None
            effect = HandOver(lang, pending.topic, pending.question, pending.offers)
            # the service answers with the case number once the case is stored (handed_over)
            return self._reply(lang, self.desk.opened(lang, "…", pending.question is not None), effects=(effect,))
        if payload == handover.NO:
            session.handover = None
            return self._reply(lang, Message((handover.declined(lang),), cards.topic_buttons(self.catalogue, lang)))
        if payload == handover.STOP:
            return self._end_handover(lang, incoming)
        return self._stale(lang)

    def handed_over(self, lang: str, number: str | None, with_question: bool) -> Reply:
        """What the newcomer reads once the case is stored (number) or could not be (None)."""
        assert self.desk is not None
        if number is None:
            return self._reply(lang, handover.not_handed_over(lang))
        return self._reply(lang, self.desk.opened(lang, number, with_question))

    def _end_handover(self, lang: str, incoming: Incoming) -> Reply:
        if not (self.desk and incoming.with_counsellor):
            return self._reply(lang, handover.nothing_to_end(lang))
        return self._reply(lang, handover.ended(lang, by_counsellor=False), effects=(EndHandover(),))
