"""Whatever a person sends, the engine answers sensibly and never raises."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.reply import Button, Incoming
from bot.text import LABEL_LIMIT, shorten
from bot.transports.choices import choice, number_choices

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


# Forged button payloads: every kind the engine knows, followed by anything, and the audit's cases.
KINDS = ["d:", "o:", "t:", "lang:", "sub:", "fb:", "share:", "menu:", "more:", "o:integrationskurs:", "fb:kita-anmeldung:"]
tails = st.one_of(
    st.sampled_from(["²", "³¹", "①", "٣", "߃", "-", "", " 1", "1 ", "+1", "0x1", "9" * 5000, "0" * 4301]),
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=8),  # "²", "٣", "Ⅻ"
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),  # beyond int()'s 4300 digits
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), tail=tails)
def test_forged_payloads_of_every_kind_get_a_sane_reply(engine, kind, tail):
    check_reply(engine.handle(Incoming(user="forger", payload=kind + tail)))


@pytest.mark.parametrize("payload", ["d:²", "d:" + "7" * 5000, "d:٣", "d:-1", "d:99999"])
def test_odd_district_buttons_are_stale_buttons(engine, payload):
    reply = engine.handle(Incoming(user="odd", payload=payload, chosen_language="en"))
    assert "no longer valid" in reply.plain() and not reply.effects


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab cд,-("), max_size=120), limit=st.integers(min_value=8, max_value=80))
def test_labels_are_shortened_at_a_word_boundary(text, limit):
    short = shorten(text, limit)
    assert len(short) <= limit
    if len(text) <= limit:
        assert short == text
        return
    kept = short.removesuffix("…")
    assert short.endswith("…") and text.startswith(kept)
    if " " in text[limit // 2 + 1: limit - 1]:  # a word boundary near the limit: cut there, not in a word
        assert text[len(kept)] in " ,;:-–—(/"


def test_offer_labels_are_cut_between_words(engine, catalogue):
    checked = 0
    for topic, offers in catalogue.by_topic.items():
        for lang in ("ar", "uk"):
            reply = engine.handle(Incoming(user="labels", payload=f"t:{topic}", chosen_language=lang))
            labels = {b.payload: b.label for m in reply.messages for row in m.buttons for b in row}
            for ident in offers:
                title, label = catalogue.offers[ident].text(lang).title, labels[f"o:{ident}:card"]
                assert len(label) <= LABEL_LIMIT
                if len(title) > LABEL_LIMIT:
                    checked += 1
                    assert label.endswith("…") and title.startswith(label[:-1])
                    assert title[len(label) - 1] in " ,;:-–—(/"  # cut between words (or compound parts)
    assert checked  # the catalogue has such titles


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=30), tails))
def test_a_typed_choice_never_raises(text):
    buttons = {1: Button("a", "t:school"), 2: Button("b", "more:")}
    picked = choice(text, buttons)
    if picked is not None:
        assert text.strip().isascii() and buttons[int(text.strip())] is picked


def test_numbered_offers_are_numbered_once(engine):
    engine.handle(Incoming(user="num", text="Deutschkurs", chosen_language="de"))
    reply = engine.handle(Incoming(user="num", payload="more:", chosen_language="de"))
    numbered = number_choices(reply)
    lines = [f"{n}. {label}" for choices in numbered for n, label, _ in choices]
    assert lines and not any(re.match(r"\d+\. \d+\. ", line) for line in lines)
    numbers = [n for choices in numbered for n, _, _ in choices]
    assert len(numbers) == len(set(numbers))
    first = re.search(r"^(\d+)\. ", reply.plain(), re.MULTILINE)  # the text numbers the offers 4, 5, …
    assert first and int(first[1]) == numbered[0][0][0]  # and typing that number opens that offer
