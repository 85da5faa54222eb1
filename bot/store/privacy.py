"""Pseudonymous keys, encrypted delivery addresses and scrubbing of free text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_ENV = "BILDUNGSLOTSE_SECRET"
log = logging.getLogger(__name__)


def load_secret(data_dir: Path) -> bytes:
    """The secret from $BILDUNGSLOTSE_SECRET; for a local bot without it, one generated once
    into the data directory (never into the repository), so keys stay stable across restarts."""
    value = os.environ.get(SECRET_ENV)
    if value:
        return value.encode()
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
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


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?:\+|00)?\d[\d\s/().-]{5,}\d")
_DIGITS = re.compile(r"\d{5,}")


def scrub(text: str) -> str:
    """Remove what could identify a person from a question before it is kept."""
    text = _EMAIL.sub("[e-mail]", text)
    text = _PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 6 else m.group(), text)
    return _DIGITS.sub("[number]", text)
