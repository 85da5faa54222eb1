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
    chosen_language: str | None = None  # a language chosen outside the chat (e.g. ask --lang)


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


@dataclass(frozen=True, slots=True)
class Reply:
    language: str
    rtl: bool
    messages: tuple[Message, ...]
    category: str | None = None  # the topic the bot decided on for a question, or None
    matches: tuple = field(default=())  # ranked matcher matches behind a question's answer
    answered: bool | None = None  # for questions: did an offer fit?

    def plain(self) -> str:
        return "\n\n".join(render_plain(list(m.lines), self.rtl) for m in self.messages)

    def html_messages(self) -> list[str]:
        return [render_html(list(m.lines), self.rtl) for m in self.messages]
