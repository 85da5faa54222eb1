"""What the newcomer reads about the handover, in their language: the offer with what is shared
and when counsellors answer, the confirmation with the case number, the end, and a counsellor's
message marked as coming from a person. Pure functions of their inputs, like the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.handover.hours import Hours
from bot.i18n import translator
from bot.languages import is_rtl
from bot.reply import Button, Message, Reply
from bot.text import Line, bold, plain

OFFER, YES, NO, STOP = "hv:offer", "hv:yes", "hv:no", "hv:stop"
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Pending:
    """What a handover would share, kept in the engine's memory only until the newcomer agrees."""

    question: str | None
    topic: str | None
    offers: tuple[str, ...]


def _day_names(_) -> tuple[str, ...]:
    return (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"))


@dataclass(frozen=True, slots=True)
class Desk:
    """The counsellors' desk as the engine sees it: their hours and the time now."""

    hours: Hours
    clock: Clock = lambda: datetime.now(UTC)

    def button(self, lang: str) -> tuple[Button, ...]:
        _ = translator(lang)
        return (Button("🙋 " + _("Talk to a person"), OFFER),)

    def _when(self, lang: str) -> list[Line]:
        """When counsellors answer; off hours, when to expect it (and that the case is kept)."""
        _ = translator(lang)
        days = _day_names(_)
        if not self.hours.known:
            return [(plain(_("Counsellors answer as soon as they can.")),)]
        lines: list[Line] = [(plain(_("Counsellors usually answer {hours}.").format(
            hours=self.hours.describe(lambda d: days[d]))),)]
        now = self.clock()
        if not self.hours.is_open(now):
            nxt = self.hours.next_opening(now)
            if nxt is not None:
                when = _("{day}, {time}").format(day=days[nxt.weekday()], time=f"{nxt:%H:%M}")
                lines.append((bold(_("It is outside these hours now: expect an answer from {when} on. Your case is kept until then.").format(when=when)),))
        return lines

    def offer(self, lang: str) -> Message:
        _ = translator(lang)
        lines: list[Line] = [
            (bold(_("A counsellor of the city can answer you here, in this chat.")),),
            (plain(_("If you agree, I share only your question and your language with the counsellors – not your name and not your number.")),),
            *self._when(lang),
        ]
        return Message(tuple(lines), ((Button("✅ " + _("Yes, hand over"), YES), Button(_("No, thank you"), NO)),))

    def opened(self, lang: str, number: str, with_question: bool) -> Message:
        _ = translator(lang)
        lines: list[Line] = [(bold(_("Your case {number} is with the counsellors. What you write here now goes to them, until the conversation ends.").format(number=number)),)]
        if not with_question:
            lines.append((plain(_("Write your question now: it goes to the counsellors.")),))
        lines.extend(self._when(lang))
        return Message(tuple(lines), (self.end_button(lang),))

    def end_button(self, lang: str) -> tuple[Button, ...]:
        _ = translator(lang)
        return (Button("✖ " + _("End the conversation"), STOP),)


def declined(lang: str) -> Line:
    _ = translator(lang)
    return (plain(_("All right: I shared nothing. Ask me again or choose a topic:")),)


def ended(lang: str, by_counsellor: bool) -> Message:
    _ = translator(lang)
    text = (_("The counsellor has ended the conversation. You can ask me again at any time.") if by_counsellor
            else _("The conversation with the counsellor has ended. You can ask me again at any time."))
    return Message(((plain(text),),))


def nothing_to_end(lang: str) -> Message:
    _ = translator(lang)
    return Message(((plain(_("There is no conversation with a counsellor to end.")),),))


def not_handed_over(lang: str) -> Message:
    _ = translator(lang)
    return Message(((plain(_("I could not hand over your question just now. Please try again in a few minutes.")),),))


def help_line(lang: str) -> Line:
    _ = translator(lang)
    return (plain(_("Press “Talk to a person” to write with a counsellor of the city; /stop ends it.")),)


def from_counsellor(lang: str, text: str, desk: Desk) -> Reply:
    """A counsellor's reply, in the newcomer's chat, marked as a person's: their words as they
    wrote them (not translated), under a heading in the newcomer's language."""
    _ = translator(lang)
    lines: list[Line] = [(bold("👤 " + _("A counsellor (a person) writes:")),)]
    lines.extend((plain(part),) for part in text.splitlines() if part.strip())
    return Reply(lang, is_rtl(lang), (Message(tuple(lines), (desk.end_button(lang),)),))


def closed_by_counsellor(lang: str) -> Reply:
    return Reply(lang, is_rtl(lang), (ended(lang, by_counsellor=True),))
