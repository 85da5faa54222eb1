"""The terminal chat: the engine in a terminal, buttons shown as numbered choices."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from bot.engine import Engine
from bot.reply import Button, Incoming, Reply

QUIT = {"/quit", "/exit", "/q"}


def numbered(reply: Reply) -> tuple[str, list[Button]]:
    """The reply as text with every button numbered, and the buttons in that order."""
    buttons: list[Button] = []
    parts = []
    for message in reply.messages:
        from bot.text import render_plain

        text = render_plain(list(message.lines), reply.rtl)
        choices = []
        for row in message.buttons:
            for button in row:
                buttons.append(button)
                choices.append(f"[{len(buttons)}] {button.label}")
        parts.append(text + ("\n" + "   ".join(choices) if choices else ""))
    return "\n\n".join(parts), buttons


def run_chat(engine: Engine, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
             user: str = "console") -> int:
    hint = (os.environ.get("LC_ALL") or os.environ.get("LANG") or "").split(".")[0] or None
    interactive = stdin.isatty()
    reply = engine.handle(Incoming(user=user, text="/start", language_hint=hint))
    text, buttons = numbered(reply)
    stdout.write(text + "\n")
    if interactive:
        stdout.write("\n(Type a question, a number to choose, or /quit.)\n")
    while True:
        if interactive:
            stdout.write("\n> ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return 0
        line = line.strip()
        if line in QUIT:
            return 0
        if not line:
            continue
        if line.isdigit() and 1 <= int(line) <= len(buttons):
            incoming = Incoming(user=user, payload=buttons[int(line) - 1].payload, language_hint=hint)
        else:
            incoming = Incoming(user=user, text=line, language_hint=hint)
        text, buttons = numbered(engine.handle(incoming))
        stdout.write("\n" + text + "\n")
