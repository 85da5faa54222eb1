"""The terminal chat: the bot in a terminal, buttons shown as numbered choices."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TextIO

from bot.reply import Button, Incoming, Reply
from bot.service import Service
from bot.text import render_plain

QUIT = {"/quit", "/exit", "/q"}
USER = "terminal"


def numbered(reply: Reply) -> tuple[str, list[Button]]:
    """The reply as text with every button numbered, and the buttons in that order."""
    buttons: list[Button] = []
    parts = []
    for message in reply.messages:
        text = render_plain(list(message.lines), reply.rtl)
        choices = []
        for row in message.buttons:
            for button in row:
                buttons.append(button)
                choices.append(f"[{len(buttons)}] {button.label}")
        parts.append(text + ("\n" + "   ".join(choices) if choices else ""))
    return "\n\n".join(parts), buttons


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
        if line.isdigit() and 1 <= int(line) <= len(buttons):
            incoming = Incoming(user="", payload=buttons[int(line) - 1].payload, language_hint=hint)
        else:
            incoming = Incoming(user="", text=line, language_hint=hint)
        text, buttons = numbered(await service.handle(USER, incoming))
        stdout.write("\n" + text + "\n")
