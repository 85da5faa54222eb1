"""Whatever a person sends, the engine answers sensibly and never raises."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.reply import Incoming

ALLOWED = {"b", "i", "a", "code"}


class _Balanced(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        assert tag in ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag


def check_reply(reply) -> None:
    assert reply.messages
    assert reply.language in ("de", "en", "ar", "fa", "tr", "ru", "uk", "ro", "bg", "pl")
    for html in reply.html_messages():
        assert html.strip()
        parser = _Balanced()
        parser.feed(html)
        parser.close()
        assert not parser.stack
    for message in reply.messages:
        for row in message.buttons:
            for button in row:
                assert len(button.payload.encode()) <= 64 and button.label


special = st.sampled_from([
    "", " ", "\n\t", "\x00\x01\x1b[31m", "\u202eevil\u202c", "\u2066x\u2069", "😀😀😀", "<b>bold</b> <script>",
    "**kita** _schule_ [link](http://x)", "/start", "/start " + "a" * 80, "/language xx", "/unknown", "Kita" * 2500,
])
texts = st.one_of(special, st.text(max_size=300), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=50))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, hint=st.one_of(st.none(), st.text(max_size=8), st.sampled_from(["ar", "fa-IR", "zz"])))
def test_any_text_gets_a_sane_reply(engine, text, hint):
    reply = engine.handle(Incoming(user="prop", text=text, language_hint=hint))
    check_reply(reply)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.text(max_size=70), st.sampled_from(["o:", "o::", "t:", "lang:xx", "more:", "menu:x", "o:mbeon:zzz"])))
def test_any_button_payload_gets_a_sane_reply(engine, payload):
    check_reply(engine.handle(Incoming(user="prop", payload=payload)))


def test_user_text_is_never_echoed_as_markup(engine):
    reply = engine.handle(Incoming(user="x", text="<b>Kita</b><script>alert(1)</script>"))
    assert "<script>" not in "".join(reply.html_messages())
