"""Editors' accounts, roles and signed-in sessions, kept in the store's database."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import DEFAULT_MUNICIPALITY
from bot.languages import LANGUAGES, SOURCE_LANGUAGE
from bot.store.workbench import accounts, web_sessions

NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 10
SESSION_HOURS = 12

_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A name, role or password that cannot be used; the message says why in one sentence."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_edit(self, lang: str) -> bool:
        """Editors keep the German source; a translator only their language; admins everything."""
        if self.role == "admin":
            return True
        if self.role == "editor":
            return lang == SOURCE_LANGUAGE
        return self.role == f"translator:{lang}"

    @property
    def languages(self) -> tuple[str, ...]:
        if self.role == "editor":
            return (SOURCE_LANGUAGE,)
        if self.role.startswith("translator:"):
            return (self.role.split(":", 1)[1],)
        return LANGUAGES


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    csrf: str


def check_role(role: str) -> str:
    if role in ("editor", "admin"):
        return role
    lang = role.removeprefix("translator:")
    if role.startswith("translator:") and lang in LANGUAGES and lang != SOURCE_LANGUAGE:
        return role
    others = ", ".join(code for code in LANGUAGES if code != SOURCE_LANGUAGE)
    raise AccountError(f"unknown role '{role}': use editor, admin or translator:LANG ({others})")


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _now() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_account(db: AsyncEngine, name: str, role: str, password: str, city: str = DEFAULT_MUNICIPALITY) -> None:
    if not NAME_RE.match(name):
        raise AccountError("a name is 1-64 letters, digits or . _ @ -")
    role, password = check_role(role), check_password(password)
    async with db.begin() as conn:
        if (await conn.execute(select(accounts.c.name).where(accounts.c.name == name))).first():
            raise AccountError(f"there is already an account '{name}'")
        await conn.execute(insert(accounts).values(name=name, role=role, password_hash=_hasher.hash(password),
                                                   created_at=_now(), municipality=city))


async def list_accounts(db: AsyncEngine, city: str = DEFAULT_MUNICIPALITY) -> list[Account]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(accounts.c.name, accounts.c.role).where(accounts.c.municipality == city)
                                   .order_by(accounts.c.name))).all()
    return [Account(r.name, r.role) for r in rows]


async def remove_account(db: AsyncEngine, name: str, city: str = DEFAULT_MUNICIPALITY) -> bool:
    async with db.begin() as conn:
        mine = accounts.c.name == name, accounts.c.municipality == city
        if not (await conn.execute(select(accounts.c.name).where(*mine))).first():
            return False
        await conn.execute(delete(web_sessions).where(web_sessions.c.account == name))
        return (await conn.execute(delete(accounts).where(*mine))).rowcount > 0


async def set_password(db: AsyncEngine, name: str, password: str, city: str = DEFAULT_MUNICIPALITY) -> bool:
    """A new password; every session of the account ends (a leaked cookie stops working)."""
    digest = _hasher.hash(check_password(password))
    async with db.begin() as conn:
        mine = accounts.c.name == name, accounts.c.municipality == city
        if not (await conn.execute(select(accounts.c.name).where(*mine))).first():
            return False
        await conn.execute(delete(web_sessions).where(web_sessions.c.account == name))
        changed = await conn.execute(update(accounts).where(*mine).values(password_hash=digest))
        return changed.rowcount > 0


async def verify(db: AsyncEngine, name: str, password: str, city: str = DEFAULT_MUNICIPALITY) -> Account | None:
    """The account if the password is right and it edits this workbench's city."""
    async with db.connect() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.name == name,
                                                         accounts.c.municipality == city))).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return Account(row.name, row.role) if row else None


async def start_session(db: AsyncEngine, account: Account) -> tuple[str, str]:
    """A new session: (cookie token, CSRF token). Only the token's hash is kept."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with db.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < _now()))
        await conn.execute(insert(web_sessions).values(token_hash=_token_hash(token), account=account.name, csrf=csrf,
                                                       expires_at=_now() + timedelta(hours=SESSION_HOURS)))
    return token, csrf


async def session_of(db: AsyncEngine, token: str | None, city: str = DEFAULT_MUNICIPALITY) -> Session | None:
    if not token:
        return None
    query = (select(web_sessions.c.csrf, web_sessions.c.expires_at, accounts.c.name, accounts.c.role)
             .join(accounts, accounts.c.name == web_sessions.c.account)
             .where(web_sessions.c.token_hash == _token_hash(token), accounts.c.municipality == city))
    async with db.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)  # SQLite drops it
    return Session(Account(row.name, row.role), row.csrf) if expires > _now() else None


async def end_session(db: AsyncEngine, token: str | None) -> None:
    if token:
        async with db.begin() as conn:
            await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _token_hash(token)))


class LoginLimiter:
    """At most `attempts` failed sign-ins per name and per address in `window_s`: guessing a
    password takes years, and argon2 makes each guess slow besides."""

    def __init__(self, attempts: int = 5, window_s: float = 900.0) -> None:
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, ()) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, keys: tuple[str, ...], now: float) -> bool:
        return any(len(self._recent(key, now)) >= self.attempts for key in keys)

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        if len(self._failures) > 10_000:  # many names tried: forget what has expired
            for key in list(self._failures):
                self._recent(key, now)
        for key in keys:
            self._failures.setdefault(key, []).append(now)
