"""Buttons as numbered choices, for platforms without buttons (Matrix, the terminal)."""

from __future__ import annotations

import re

from bot.reply import Button, Reply

_OWN_NUMBER = re.compile(r"([0-9]{1,3})\. (.+)", re.DOTALL)
_CHOICE = re.compile(r"[0-9]{1,4}")  # ASCII digits only: "²".isdigit() is true, int("²") fails

Choice = tuple[int, str, Button]  # number, label to show, button


def number_choices(reply: Reply, skip: tuple[str, ...] = ()) -> list[list[Choice]]:
    """The buttons of each message of a reply, numbered once across the reply. A label that
    already starts with its number (the offers of a list, numbered like the text above them)
    keeps that number and is not numbered twice; the other buttons follow after the highest."""
    taken: set[int] = set()
    own: dict[int, tuple[int, str]] = {}  # position -> (number, label without it)
    flat = [(m, b) for m, message in enumerate(reply.messages) for row in message.buttons for b in row
            if not b.payload.startswith(skip)]
    for position, (_, button) in enumerate(flat):
        match = _OWN_NUMBER.fullmatch(button.label)
        if match and int(match[1]) not in taken:
            taken.add(int(match[1]))
            own[position] = (int(match[1]), match[2])
    per_message: list[list[Choice]] = [[] for _ in reply.messages]
    number = max(taken, default=0) + 1
    for position, (m, button) in enumerate(flat):
        if position in own:
            per_message[m].append((own[position][0], own[position][1], button))
            continue
        per_message[m].append((number, button.label, button))
        number += 1
    return per_message


def by_number(numbered: list[list[Choice]]) -> dict[int, Button]:
    return {number: button for choices in numbered for number, _, button in choices}


def choice(text: str, choices: dict[int, Button]) -> Button | None:
    """The button a typed number picks, or None when the text is not one of the numbers."""
    text = text.strip()
    return choices.get(int(text)) if _CHOICE.fullmatch(text) else None
