"""Rich text for replies: a few span kinds, rendered as plain text or as HTML.

Replies are built once as spans; each transport picks a renderer. Escaping and
right-to-left handling live here, in one place, so no transport can forget them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

Kind = Literal["plain", "bold", "italic", "link", "code"]

# Unicode bidi controls. Left-to-right facts (phone numbers, addresses, e-mail, URLs, German
# names) inside Arabic or Persian text are wrapped in LRI…PDI so they keep their own order
# without leaking direction into the sentence around them; an RLM at the start of each
# line makes the paragraph right-to-left even when it begins with such a fact.
LRI, PDI, RLM = "\u2066", "\u2069", "\u200f"


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    kind: Kind = "plain"
    href: str | None = None
    ltr: bool = False  # a left-to-right fact: isolate it inside right-to-left text


Line = tuple[Span, ...]


def plain(text: str) -> Span:
    return Span(text)


def bold(text: str) -> Span:
    return Span(text, "bold")


def fact(text: str) -> Span:
    """A left-to-right fact such as a phone number or an address."""
    return Span(text, ltr=True)


def link(text: str, href: str) -> Span:
    return Span(text, "link", href=href, ltr=True)


LABEL_LIMIT = 40  # characters of a button label: a phone shows about this much in one line


def shorten(text: str, limit: int = LABEL_LIMIT) -> str:
    """`text` at most `limit` characters, cut between words (or after a hyphen) and marked
    with "…"; a single word longer than the limit is the only thing ever cut inside."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    boundary = max(cut.rfind(" "), cut.rfind("-") + 1 if cut.rfind("-") > 0 else -1)
    if boundary > 0:
        cut = cut[:boundary]
    return cut.rstrip(" ,;:-–—(/") + "…"


def _isolate(text: str, span: Span, rtl: bool) -> str:
    return f"{LRI}{text}{PDI}" if rtl and span.ltr else text


def render_plain(lines: list[Line], rtl: bool = False) -> str:
    out = []
    for line in lines:
        parts = []
        for span in line:
            text = span.text
            if span.kind == "link" and span.href and span.href != span.text:
                text = f"{span.text} {span.href}" if span.text else span.href
            parts.append(_isolate(text, span, rtl))
        joined = "".join(parts)
        out.append(f"{RLM}{joined}" if rtl and joined else joined)
    return "\n".join(out)


def render_html(lines: list[Line], rtl: bool = False) -> str:
    """HTML in the subset Telegram and Matrix both accept (b, i, a, code), escaped."""
    out = []
    for line in lines:
        parts = []
        for span in line:
            text = html.escape(span.text, quote=False)
            if span.kind == "bold":
                text = f"<b>{text}</b>"
            elif span.kind == "italic":
                text = f"<i>{text}</i>"
            elif span.kind == "code":
                text = f"<code>{text}</code>"
            elif span.kind == "link" and span.href:
                text = f'<a href="{html.escape(span.href, quote=True)}">{text or html.escape(span.href)}</a>'
            parts.append(_isolate(text, span, rtl))
        joined = "".join(parts)
        out.append(f"{RLM}{joined}" if rtl and joined else joined)
    return "\n".join(out)
