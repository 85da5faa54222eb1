"""The scrubber: what could identify a person never survives in a kept question, in any of the
ten languages' scripts, and a question without such things is kept as it was."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.store import scrub

ALPHABETS = {
    "de": "abcdefghijklmnopqrstuvwxyzäöüß", "en": "abcdefghijklmnopqrstuvwxyz",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "fa": "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی",
    "tr": "abcçdefgğhıijklmnoöprsştuüvyz", "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя", "ro": "aăâbcdefghiîjklmnopqrsștțuvwxyz",
    "bg": "абвгдежзийклмнопрстуфхцчшщъьюя", "pl": "aąbcćdeęfghijklłmnńoópqrsśtuwyzźż",
}
ASCII = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"


def words(lang: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.text(alphabet=ALPHABETS[lang], min_size=2, max_size=10), max_size=5)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def _email(local: str, at: str, domain: str, tld: str, wide: bool) -> str:
    address = f"{local}{at}{domain}.{tld}"
    return fullwidth(address) if wide else address


emails = st.builds(
    _email, st.text(alphabet=ASCII + DIGITS + "._", min_size=1, max_size=12),
    st.sampled_from(["@", " @ ", "(at)", " (at) ", "[at]", " [at] ", "{at}"]),
    st.text(alphabet=ASCII + DIGITS + "-", min_size=1, max_size=12), st.text(alphabet=ASCII, min_size=2, max_size=6),
    st.booleans())


def _digits(n: int, script: str) -> st.SearchStrategy[str]:
    zero = {"latin": "0", "arabic": "\u0660", "persian": "\u06f0"}[script]
    return st.text(alphabet=[chr(ord(zero) + d) for d in range(10)], min_size=n, max_size=n)


phones = st.sampled_from(["latin", "arabic", "persian"]).flatmap(lambda script: st.builds(
    lambda prefix, a, b: f"{prefix}{a} {b}", st.sampled_from(["+49 ", "0049 ", "0", ""]), _digits(3, script),
    _digits(7, script)))
handles = st.one_of(
    st.builds(lambda h: "@" + h, st.text(alphabet=ASCII + DIGITS + "_", min_size=5, max_size=20)),
    st.builds(lambda h, s: f"@{h}:{s}.org", st.text(alphabet=ASCII, min_size=3, max_size=10),
              st.text(alphabet=ASCII, min_size=3, max_size=10)))
links = st.builds(lambda host, path: f"{host}{path}",
                  st.sampled_from(["t.me/", "https://t.me/", "telegram.me/", "https://wa.me/", "instagram.com/"]),
                  st.text(alphabet=ASCII + DIGITS + "_", min_size=3, max_size=20))
addresses = st.builds(
    lambda name, suffix, number, letter: f"{name.capitalize()}{suffix} {number}{letter}",
    st.text(alphabet=ALPHABETS["de"], min_size=3, max_size=12),
    st.sampled_from(["straße", "strasse", "str.", "weg", "allee", "platz", "gasse", "ring", " Straße", "-Straße"]),
    st.integers(min_value=1, max_value=300), st.sampled_from(["", "a", "b"]))
documents = st.builds(  # passport and ID card numbers, e.g. C01X00T47
    lambda first, digits, rest: first + "".join(digits) + rest,
    st.sampled_from("CFGHJKLMNPRTVWXYZ"), st.lists(st.sampled_from(DIGITS), min_size=3, max_size=3),
    st.text(alphabet="CFGHJKLMNPRTVWXYZ0123456789", min_size=2, max_size=5))
KINDS = {"email": emails, "phone": phones, "handle": handles, "link": links, "address": addresses, "document": documents}


@settings(max_examples=60, deadline=None)
@given(before=st.data(), found=st.data())
@pytest.mark.parametrize("lang", list(ALPHABETS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_nothing_identifying_survives(lang, kind, before, found):
    pii = found.draw(KINDS[kind], label=kind)
    head, tail = before.draw(words(lang), label="before"), before.draw(words(lang), label="after")
    kept = scrub(" ".join([*head, pii, *tail]))
    assert pii not in kept
    assert not re.search(r"\d", kept), kept  # the words have no digits: every digit came from the thing scrubbed
    assert "@" not in kept and "(at)" not in kept and "[at]" not in kept and ".me/" not in kept
    assert scrub(kept) == kept  # placeholders are left alone
    for word in head + tail:
        assert word in kept  # the question itself stays


@settings(max_examples=100, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("lang", list(ALPHABETS))
def test_a_question_without_such_things_is_kept_as_it_is(lang, data):
    text = " ".join(data.draw(words(lang)))
    assert scrub(text) == text


@pytest.mark.parametrize(("raw", "clean"), [
    ("Ich wohne in der Friedrich-Ebert-Straße 12a, Kassel", "Ich wohne in der [address], Kassel"),
    ("вул. Шевченка 5, Київ", "[address], Київ"),
    ("Atatürk Caddesi No: 12", "Atatürk [address]"),
    ("meine Passnummer C01X00T47", "meine Passnummer [document]"),
    ("schreib an name(at)example.org oder @amal_k", "schreib an [e-mail] oder [handle]"),
    ("Ich habe 3 Kinder und suche B1 Kurs 2026", "Ich habe 3 Kinder und suche B1 Kurs 2026"),
])
def test_examples(raw, clean):
    assert scrub(raw) == clean
