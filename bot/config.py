"""Settings: a YAML file (see config.example.yaml) over embedded defaults; secrets from the
environment only, never from a file in the repository."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bot.catalogue.yamlsource import LineDict, YamlError, read_yaml
from bot.languages import LANGUAGES
from bot.matching.index import DEFAULT_THRESHOLD
from bot.paths import CATALOGUE_DIR

CONFIG_ENV = "BILDUNGSLOTSE_CONFIG"
TELEGRAM_TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
TELEGRAM_WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
MATRIX_TOKEN_ENV = "MATRIX_ACCESS_TOKEN"
MATRIX_PASSWORD_ENV = "MATRIX_PASSWORD"
DATABASE_URL_ENV = "DATABASE_URL"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"


class ConfigError(Exception):
    """A setting is wrong; the message names the file, the line and the fix."""


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str | None = None
    base_url: str = TELEGRAM_BASE_URL
    admins: tuple[int, ...] = ()
    # Webhook mode instead of long polling: the public URL Telegram posts to, and where we listen.
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str | None = None  # $TELEGRAM_WEBHOOK_SECRET, checked on every request
    username: str | None = None  # the bot's @username, for the links multipliers share


@dataclass(frozen=True, slots=True)
class MatrixSettings:
    homeserver: str | None = None
    user_id: str | None = None
    token: str | None = None  # $MATRIX_ACCESS_TOKEN
    password: str | None = None  # $MATRIX_PASSWORD, when there is no token
    command_prefix: str = "!lotse"
    allowed_servers: tuple[str, ...] = ()  # accept invites only from these homeservers (empty: all)
    admins: tuple[str, ...] = ()  # Matrix user ids allowed to use reload and stats


@dataclass(frozen=True, slots=True)
class Config:
    catalogue: Path = CATALOGUE_DIR
    data_dir: Path = Path("data")
    default_language: str = "en"
    match_threshold: float = DEFAULT_THRESHOLD
    database_url: str | None = None  # from $DATABASE_URL; None: SQLite in data_dir
    retention_days: int = 30
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    source: Path | None = None

    @property
    def platforms(self) -> list[str]:
        found = []
        if self.telegram.token:
            found.append("telegram")
        if (self.matrix.token or self.matrix.password) and self.matrix.homeserver and self.matrix.user_id:
            found.append("matrix")
        return found


_SCHEMA: dict[str, dict[str, type] | type] = {
    "catalogue": str, "data_dir": str, "default_language": str,
    "matching": {"threshold": float},
    "privacy": {"retention_days": int},
    "telegram": {"base_url": str, "admins": list, "username": str, "webhook": {"url": str, "listen": str, "port": int}},
    "matrix": {"homeserver": str, "user_id": str, "command_prefix": str, "allowed_servers": list, "admins": list},
}


def _check(node: LineDict, schema: dict, path: Path, prefix: str = "") -> None:
    for key, value in node.items():
        where = f"{path}:{node.line_of(key)}"
        expected = schema.get(key)
        if expected is None:
            known = ", ".join(prefix + k for k in schema)
            raise ConfigError(f"{where}: unknown setting '{prefix}{key}' (known: {known})")
        if isinstance(expected, dict):
            if not isinstance(value, LineDict):
                raise ConfigError(f"{where}: '{prefix}{key}' must be a section of settings")
            _check(value, expected, path, f"{prefix}{key}.")
        elif expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        elif not isinstance(value, expected):
            raise ConfigError(f"{where}: '{prefix}{key}' must be {expected.__name__}")


def load_config(path: Path | str | None = None) -> Config:
    """Read the config file named by `path`, else by $BILDUNGSLOTSE_CONFIG, else use defaults."""
    env = os.environ
    name = path or env.get(CONFIG_ENV)
    data: LineDict = LineDict()
    source = None
    if name:
        source = Path(name)
        if not source.is_file():
            raise ConfigError(f"{source}: config file not found (copy config.example.yaml and adjust it)")
        try:
            loaded = read_yaml(source)
        except YamlError as exc:
            raise ConfigError(f"{source}:{exc.line}: {exc.message}") from None
        if loaded is not None and not isinstance(loaded, LineDict):
            raise ConfigError(f"{source}:1: expected settings as 'name: value' lines")
        data = loaded or LineDict()
        _check(data, _SCHEMA, source)
    base = source.parent if source else Path.cwd()
    lang = data.get("default_language", "en")
    if lang not in LANGUAGES:
        raise ConfigError(f"{source}:{data.line_of('default_language')}: unknown default_language "
                          f"'{lang}' (use one of {', '.join(LANGUAGES)})")
    telegram = data.get("telegram") or {}
    matrix = data.get("matrix") or {}
    try:
        admins = tuple(int(a) for a in telegram.get("admins", []))
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: telegram.admins must be a list of numeric Telegram user ids") from None
    return Config(
        catalogue=(base / data["catalogue"]) if "catalogue" in data else CATALOGUE_DIR,
        data_dir=base / data.get("data_dir", "data"),
        default_language=lang,
        match_threshold=float((data.get("matching") or {}).get("threshold", DEFAULT_THRESHOLD)),
        database_url=env.get(DATABASE_URL_ENV) or None,
        retention_days=_positive((data.get("privacy") or {}).get("retention_days", 30), source, "privacy.retention_days"),
        telegram=_telegram(telegram, admins, env, source),
        matrix=MatrixSettings(
            homeserver=matrix.get("homeserver"), user_id=matrix.get("user_id"),
            token=env.get(MATRIX_TOKEN_ENV) or None, password=env.get(MATRIX_PASSWORD_ENV) or None,
            command_prefix=matrix.get("command_prefix", "!lotse"),
            allowed_servers=tuple(str(s) for s in matrix.get("allowed_servers", [])),
            admins=tuple(str(a) for a in matrix.get("admins", [])),
        ),
        source=source,
    )


def _positive(value: int, source: Path | None, name: str) -> int:
    if value < 1:
        raise ConfigError(f"{source}: '{name}' must be at least 1")
    return value


def _telegram(section: dict, admins: tuple[int, ...], env, source: Path | None) -> TelegramSettings:
    webhook = section.get("webhook") or {}
    secret = env.get(TELEGRAM_WEBHOOK_SECRET_ENV) or None
    if webhook.get("url") and not secret:
        raise ConfigError(f"{source}: telegram.webhook needs a secret token: set {TELEGRAM_WEBHOOK_SECRET_ENV} "
                          "(1-256 characters A-Z, a-z, 0-9, _ and -)")
    return TelegramSettings(
        token=env.get(TELEGRAM_TOKEN_ENV) or None,
        # not TelegramSettings.base_url: on a slots dataclass that is a descriptor, not the default
        base_url=section.get("base_url", TELEGRAM_BASE_URL),
        admins=admins,
        webhook_url=webhook.get("url"),
        webhook_listen=webhook.get("listen", "127.0.0.1"),
        webhook_port=int(webhook.get("port", 8443)),
        webhook_secret=secret,
        username=(section.get("username") or "").lstrip("@") or None,
    )
