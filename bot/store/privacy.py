"""Pseudonymous keys, encrypted delivery addresses and scrubbing of free text."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_ENV = "BILDUNGSLOTSE_SECRET"
MIN_SECRET = 32  # bytes: an HMAC key shorter than this can be guessed, and every pseudonym with it
log = logging.getLogger(__name__)


class SecretError(ValueError):
    """The pseudonym secret is unusable; the message says how to make a good one."""


def private_dir(path: Path) -> Path:
    """A folder only the bot's user can enter (0700 when we create it; umask cannot widen it)."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists: never readable by others, not even for a moment."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def load_secret(data_dir: Path) -> bytes:
    """The secret from $BILDUNGSLOTSE_SECRET; for a local bot without it, one generated once
    into the data directory (never into the repository), so keys stay stable across restarts."""
    how = "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    value = os.environ.get(SECRET_ENV)
    if value is not None:
        if len(value.encode()) < MIN_SECRET:
            raise SecretError(f"{SECRET_ENV} is too short ({len(value.encode())} bytes): set at least "
                              f"{MIN_SECRET} random bytes, {how}")
        return value.encode()
    path = data_dir / "secret.key"
    if path.exists():
        secret = path.read_bytes().strip()
        if len(secret) < MIN_SECRET:
            raise SecretError(f"{path} holds a secret of {len(secret)} bytes, too short: put at least "
                              f"{MIN_SECRET} random bytes in it, {how} (a new secret makes stored preferences unreachable)")
        return secret
    private_dir(data_dir)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from the first byte
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    log.warning("%s is not set: generated a secret in %s (set the variable on a server)", SECRET_ENV, path)
    return value.encode()


class Pseudonyms:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        key = hashlib.sha256(b"bildungslotse-address:" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def key(self, transport: str, platform_id: str | int) -> str:
        """A stable pseudonym for a person on a platform; the platform id cannot be read back."""
        message = f"{transport}:{platform_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def seal(self, address: str) -> bytes:
        return self._fernet.encrypt(address.encode())

    def open(self, sealed: bytes) -> str | None:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            return None


# What could identify a person in a kept question, each replaced by a placeholder without digits
# or "@" (so scrubbing twice changes nothing). Applied after NFKC, so full-width "ｎａｍｅ＠…" and
# "０１５１…" look like their ASCII forms; \d also matches Arabic-Indic and Persian digits.
_AT = r"(?:\s*@\s*|\s*[(\[{]\s*(?:at|@)\s*[)\]}]\s*)"
_DOT = r"(?:\.|\s*[(\[{]\s*(?:dot|punkt)\s*[)\]}]\s*)"
_EMAIL = re.compile(rf"[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
_LINK = re.compile(r"(?:https?://|www\.)\S+|\b(?:[\w-]+\.)+[a-z]{2,}/\S*", re.IGNORECASE)  # t.me/…, wa.me/…, any path
_HANDLE = re.compile(r"(?<![\w@])@[\w.]{3,}(?::[\w.-]+)?")  # @username, a Matrix id @name:server
# A street and its house number: German street words (Kassel's addresses), and the words for
# "street" that come before the name in the other languages.
_STREET = re.compile(
    r"\b[\w.-]*(?:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|pfad|steig|stieg|"
    r"graben|markt|anlage|wall|berg|hof|tor)\s*\d{1,4}(?:\s?[a-z](?!\w))?(?!\w)"
    r"|\b(?:ул\.|улица|вул\.|вулиця|бул\.|ulica|ul\.|aleja|al\.|strada|str\.|bd\.|bulevardul|sokak|sokağı|"
    r"sok\.|cadde|caddesi|cad\.|mahallesi|mah\.|شارع|خیابان|کوچه)\s*(?:[^\s\d]+\s+){0,3}?"
    r"(?:no[.:]?\s*)?\d{1,4}(?:\s?[a-zа-я](?!\w))?(?!\w)",
    re.IGNORECASE)
# Passport and ID card numbers: 6-12 letters and digits, at least three digits and one letter.
_DOCUMENT = re.compile(r"\b(?=(?:[a-z]*\d){3})(?=\d*[a-z])[a-z\d]{6,12}\b", re.IGNORECASE | re.ASCII)
_PHONE = re.compile(r"(?:\+|00)?\d[\d\s/().-]{5,}\d")
_DIGITS = re.compile(r"\d{5,}")


def scrub(text: str) -> str:
    """Remove what could identify a person from a question before it is kept."""
    text = unicodedata.normalize("NFKC", text)
    text = _EMAIL.sub("[e-mail]", text)
    text = _LINK.sub("[link]", text)
    text = _HANDLE.sub("[handle]", text)
    text = _STREET.sub("[address]", text)
    text = _DOCUMENT.sub("[document]", text)
    text = _PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 6 else m.group(), text)
    return _DIGITS.sub("[number]", text)
