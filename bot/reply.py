"""What goes in and out of the engine: transport-free values."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.text import Line, render_html, render_plain


@dataclass(frozen=True, slots=True)
class Incoming:
    """One thing a user did: typed `text` (possibly a /command) or pressed a button (`payload`)."""

    user: str  # a pseudonymous key, never a platform id or name
    text: str = ""
    payload: str | None = None
    language_hint: str | None = None  # the platform's language for this user, if it tells
    chosen_language: str | None = None  # chosen earlier (stored) or outside the chat (ask --lang)
    district: str | None = None  # the district the person told us, if any
    topics: frozenset[str] = frozenset()  # topics the person receives news about
    with_counsellor: bool = False  # the person has a case open with the counsellors (bot/handover)


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str  # at most 64 bytes (Telegram's callback data limit)


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    title: str
    address: str


@dataclass(frozen=True, slots=True)
class Message:
    lines: tuple[Line, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()
    location: Location | None = None


# Effects: what a reply asks the service around the engine to remember or count. The engine
# itself does no I/O; bot/service.py applies these to the store.
@dataclass(frozen=True, slots=True)
class SetPreference:
    language: str | None = None
    district: str | None = None
    clear_district: bool = False


@dataclass(frozen=True, slots=True)
class Subscribe:
    topic: str
    on: bool


@dataclass(frozen=True, slots=True)
class Forget:
    pass


@dataclass(frozen=True, slots=True)
class Asked:
    language: str
    topic: str | None
    offer: str | None
    answered: bool
    text: str


@dataclass(frozen=True, slots=True)
class Feedback:
    offer: str
    topic: str
    helpful: bool
    language: str


@dataclass(frozen=True, slots=True)
class Referred:
    payload: str
    known: bool
    language: str


# The counsellor handover (bot/handover): the newcomer consented to share the question (and its
# language and topic, and the offers already suggested); a message for the counsellor; the end.
@dataclass(frozen=True, slots=True)
class HandOver:
    language: str
    topic: str | None
    question: str | None
    offers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToCounsellor:
    text: str


@dataclass(frozen=True, slots=True)
class EndHandover:
    pass


Effect = SetPreference | Subscribe | Forget | Asked | Feedback | Referred | HandOver | ToCounsellor | EndHandover


@dataclass(frozen=True, slots=True)
class Reply:
    language: str
    rtl: bool
    messages: tuple[Message, ...]
    category: str | None = None  # the topic the bot decided on for a question, or None
    matches: tuple = field(default=())  # ranked matcher matches behind a question's answer
    answered: bool | None = None  # for questions: did an offer fit?
    effects: tuple[Effect, ...] = ()
    version: str = ""  # the catalogue version the reply was built from

    def plain(self) -> str:
        return "\n\n".join(render_plain(list(m.lines), self.rtl) for m in self.messages)

    def html_messages(self) -> list[str]:
        return [render_html(list(m.lines), self.rtl) for m in self.messages]
