"""The terminal chat: the bot in a terminal, buttons shown as numbered choices."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TextIO

from bot.reply import Button, Incoming, Reply
from bot.service import Service
from bot.text import render_plain
from bot.transports.choices import by_number, choice, number_choices

QUIT = {"/quit", "/exit", "/q"}
USER = "terminal"


def numbered(reply: Reply) -> tuple[str, dict[int, Button]]:
    """The reply as text with every button numbered, and the buttons by number."""
    numbered_choices = number_choices(reply)
    parts = []
    for message, choices in zip(reply.messages, numbered_choices, strict=True):
        text = render_plain(list(message.lines), reply.rtl)
        shown = "   ".join(f"[{number}] {label}" for number, label, _ in choices)
        parts.append(text + ("\n" + shown if shown else ""))
    return "\n\n".join(parts), by_number(numbered_choices)


async def run_chat(service: Service, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    hint = (os.environ.get("LC_ALL") or os.environ.get("LANG") or "").split(".")[0] or None
    interactive = stdin.isatty()
    reply = await service.handle(USER, Incoming(user="", text="/start", language_hint=hint))
    text, buttons = numbered(reply)
    stdout.write(text + "\n")
    if interactive:
        stdout.write("\n(Type a question, a number to choose, or /quit.)\n")
    while True:
        if interactive:
            stdout.write("\n> ")
        stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return 0
        line = line.strip()
        if line in QUIT:
            return 0
        if not line:
            continue
        button = choice(line, buttons)
        if button is not None:
            incoming = Incoming(user="", payload=button.payload, language_hint=hint)
        else:
            incoming = Incoming(user="", text=line, language_hint=hint)
        text, buttons = numbered(await service.handle(USER, incoming))
        stdout.write("\n" + text + "\n")
