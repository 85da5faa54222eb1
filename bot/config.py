"""Settings: a YAML file (see config.example.yaml) over embedded defaults; secrets from the
environment only, never from a file in the repository."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.catalogue.yamlsource import LineDict, YamlError, read_yaml
from bot.languages import LANGUAGES
from bot.paths import CATALOGUE_DIR

CONFIG_ENV = "BILDUNGSLOTSE_CONFIG"
TELEGRAM_TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
TELEGRAM_WEBHOOK_SECRET_ENV = "TELEGRAM_WEBHOOK_SECRET"
MATRIX_TOKEN_ENV = "MATRIX_ACCESS_TOKEN"
MATRIX_PASSWORD_ENV = "MATRIX_PASSWORD"
DATABASE_URL_ENV = "DATABASE_URL"
REDIS_URL_ENV = "REDIS_URL"
DEFAULT_MUNICIPALITY = "kassel"
CACHE_DIR_ENV = "BILDUNGSLOTSE_CACHE_DIR"
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
class ReplicaSettings:
    """Several processes on one PostgreSQL (and one Redis for the shared send limit)."""

    redis_url: str | None = None  # $REDIS_URL; None: the send limit is this process's own
    lease_s: float = 15.0  # a leader job moves to another replica within this (plus a third of it)
    update_lease_s: float = 30.0  # an update claimed by a replica that died is answered after this
    send_per_second: float = 30.0  # Telegram's limit per bot, shared by all replicas through Redis


@dataclass(frozen=True, slots=True)
class HandoverSettings:
    """The counsellors' desk (bot/handover): off while `room` is None."""

    room: str | None = None  # the counsellors' Matrix room, an id ("!abc:example.org") or alias ("#beratung:…")
    hours: tuple[str, ...] = ()  # when counsellors usually answer, e.g. ("Mon-Fri 09:00-16:00",); empty: not said
    timezone: str = "Europe/Berlin"  # the zone the hours are in


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The editors' workbench: `bildungslotse web` serves it alone; with `enabled`, `run` too."""

    enabled: bool = False
    listen: str = "127.0.0.1"
    port: int = 8080
    # Off only to try it over plain HTTP on one's own computer; behind HTTPS always on.
    secure_cookies: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    catalogue: Path = CATALOGUE_DIR
    data_dir: Path = Path("data")
    # Where the trained ranker and new sentence embeddings are kept (default: data_dir/cache);
    # several bots or a test suite may share one, since entries are keyed by what they depend on.
    cache_dir: Path | None = None
    default_language: str = "en"
    # The bar (0..1) of the ranker's "anything fits?" probability; None: the one fitted on the examples.
    match_threshold: float | None = None
    database_url: str | None = None  # from $DATABASE_URL; None: SQLite in data_dir
    retention_days: int = 30
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    handover: HandoverSettings = field(default_factory=HandoverSettings)
    source: Path | None = None
    web: WebSettings = field(default_factory=WebSettings)
    # The city these settings serve (its rows in the store carry this name), and further cities
    # served by the same deployment, each with the settings of this one but its own catalogue,
    # bots, admins and figures.
    municipality: str = DEFAULT_MUNICIPALITY
    municipalities: tuple[Config, ...] = ()
    replicas: ReplicaSettings = field(default_factory=ReplicaSettings)

    def cities(self) -> tuple[Config, ...]:
        """Every municipality this deployment serves, this one first."""
        return (self, *self.municipalities)

    def city(self, name: str | None) -> Config:
        """The settings of one municipality (None: the first); ConfigError names the known ones."""
        for city in self.cities():
            if name is None or city.municipality == name:
                return replace(city, municipalities=())
        known = ", ".join(c.municipality for c in self.cities())
        raise ConfigError(f"{self.source or 'the settings'}: unknown municipality '{name}' (configured: {known})")

    @property
    def shared_store(self) -> bool:
        """Other processes may write to the database: PostgreSQL is how replicas run."""
        return bool(self.database_url) and not str(self.database_url).startswith("sqlite")

    @property
    def ranker_cache(self) -> Path:
        explicit = self.cache_dir or os.environ.get(CACHE_DIR_ENV)
        return Path(explicit) if explicit else self.data_dir / "cache"

    @property
    def platforms(self) -> list[str]:
        found = []
        if self.telegram.token:
            found.append("telegram")
        if (self.matrix.token or self.matrix.password) and self.matrix.homeserver and self.matrix.user_id:
            found.append("matrix")
        return found


# A check returns what is wrong with a value ("must be …, not …"), or None when it is right.
# YAML is generous with types: `true` is an int to Python, `.nan` a float, `12.9` truncates to
# 12 under int(); so every value is checked for its kind and its range before it is used.
Check = Callable[[Any], str | None]

MAX_RETENTION_DAYS = 3650  # ten years; far more would also overflow a date


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a section"
    if isinstance(value, str):
        return f"'{value[:60]}…'" if len(value) > 60 else f"'{value}'"
    return repr(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(what: str = "text", pattern: str = r"\S.*") -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and re.fullmatch(pattern, value, re.DOTALL):
            return None
        return f"must be {what}, not {_shown(value)}"
    return check


def _whole(what: str, low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if _is_whole(value) and low <= value <= high:
            return None
        return f"must be {what} from {low} to {high}, not {_shown(value)}"
    return check


def _threshold(value: Any) -> str | None:
    # The ranker's probability that anything fits; left out, the bar fitted on the examples.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1:
        return None
    return f"must be a probability from 0 to 1 (such as 0.5), or left out for the fitted one, not {_shown(value)}"


def _telegram_user_id(value: Any) -> bool:
    # A quoted id ("123456789") was accepted before and is unambiguous; true, 12.9 and "²" are not ids.
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        value = int(value)
    return _is_whole(value) and value > 0


def _list_of(ok: Callable[[Any], bool], what: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be a list of {what}, not {_shown(value)}"
        for item in value:
            if not ok(item):
                return f"must be a list of {what}, and {_shown(item)} is not one"
        return None
    return check


def _is(check: Check) -> Callable[[Any], bool]:
    return lambda value: check(value) is None


_URL = _text("a URL starting with https:// or http://", r"https?://\S+")
_MATRIX_USER = _text("a Matrix user id such as '@lotse:example.org'", r"@[^:\s]+:\S+")
_ENV_NAME = _text("the name of an environment variable such as MUSTERSTADT_TELEGRAM_TOKEN", r"[A-Z_][A-Z0-9_]*")
_CITY_NAME = r"[a-z][a-z0-9-]{0,63}"


def _section(value: Any) -> str | None:
    return None if isinstance(value, LineDict) else f"must be a section of settings, not {_shown(value)}"


def _positive(what: str, high: float) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= high:
            return None
        return f"must be {what} above 0 and at most {high:g}, not {_shown(value)}"
    return check
_SCHEMA: dict[str, Any] = {
    "catalogue": _text("the path of a catalogue folder"), "data_dir": _text("the path of a folder"),
    "cache_dir": _text("the path of a folder"),
    "default_language": _text("a language code"),
    "matching": {"threshold": _threshold},
    "privacy": {"retention_days": _whole("a whole number of days", 1, MAX_RETENTION_DAYS)},
    "telegram": {
        "base_url": _URL, "username": _text("the bot's @username", r"@?\w+"),
        "admins": _list_of(_telegram_user_id, "numeric Telegram user ids such as 123456789"),
        "webhook": {"url": _text("an https:// URL", r"https://\S+"), "listen": _text("an address to listen on"),
                    "port": _whole("a port number", 1, 65535)},
    },
    "web": {"enabled": lambda v: None if isinstance(v, bool) else "must be true or false",
            "listen": _text("an address to listen on"), "port": _whole("a port number", 1, 65535),
            "secure_cookies": lambda v: None if isinstance(v, bool) else "must be true or false"},
    "matrix": {
        "homeserver": _URL, "user_id": _MATRIX_USER, "command_prefix": _text("a word such as '!lotse'", r"\S+"),
        "allowed_servers": _list_of(_is(_text("a server name", r"[^\s/]+")), "server names such as 'example.org'"),
        "admins": _list_of(_is(_MATRIX_USER), "Matrix user ids such as '@editor:example.org'"),
    },
    "municipality": _text("a lower-case name such as 'kassel' (letters, digits, -)", _CITY_NAME),
    "municipalities": _section,
    "replicas": {"lease_seconds": _positive("a number of seconds", 600),
                 "update_lease_seconds": _positive("a number of seconds", 3600),
                 "send_per_second": _positive("a number of messages", 10_000)},
    "handover": {
        "room": _text("a Matrix room id or alias such as '#beratung:example.org'", r"[#!]\S+"),
        "hours": _list_of(_is(_text("hours", r"(?i)\s*[a-z]{3}(\s*-\s*[a-z]{3})?\s+\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*")),
                          "hours such as 'Mon-Fri 09:00-16:00'"),
        "timezone": _text("a time zone such as 'Europe/Berlin'"),
    },
}
# A further municipality: its catalogue and language, its bots and admins; the rest is shared.
_CITY_SCHEMA: dict[str, Any] = {
    "catalogue": _SCHEMA["catalogue"], "default_language": _SCHEMA["default_language"],
    "matching": _SCHEMA["matching"],
    "telegram": {**_SCHEMA["telegram"], "token_env": _ENV_NAME, "secret_env": _ENV_NAME},
    "matrix": {**_SCHEMA["matrix"], "token_env": _ENV_NAME, "password_env": _ENV_NAME},
    "handover": _SCHEMA["handover"],  # each city's own counsellors; unset: the first city's
}


def _check(node: LineDict, schema: dict, path: Path, prefix: str = "") -> None:
    """Raise ConfigError for the first wrong setting: one sentence with file, line and fix."""
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
        elif problem := expected(value):
            raise ConfigError(f"{where}: '{prefix}{key}' {problem}")


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
    handover = _handover(data.get("handover") or LineDict(), source)
    admins = tuple(int(a) for a in telegram.get("admins", []))  # checked above: whole numbers
    replicas = data.get("replicas") or {}
    config = Config(
        catalogue=(base / data["catalogue"]) if "catalogue" in data else CATALOGUE_DIR,
        data_dir=base / data.get("data_dir", "data"),
        cache_dir=base / data["cache_dir"] if "cache_dir" in data else None,
        default_language=lang,
        match_threshold=(data.get("matching") or {}).get("threshold"),
        database_url=env.get(DATABASE_URL_ENV) or None,
        retention_days=(data.get("privacy") or {}).get("retention_days", 30),
        telegram=_telegram(telegram, admins, env, source),
        matrix=MatrixSettings(
            homeserver=matrix.get("homeserver"), user_id=matrix.get("user_id"),
            token=env.get(MATRIX_TOKEN_ENV) or None, password=env.get(MATRIX_PASSWORD_ENV) or None,
            command_prefix=matrix.get("command_prefix", "!lotse"),
            allowed_servers=tuple(str(s) for s in matrix.get("allowed_servers", [])),
            admins=tuple(str(a) for a in matrix.get("admins", [])),
        ),
        handover=handover,
        source=source,
        web=WebSettings(**(data.get("web") or {})),
        municipality=data.get("municipality", DEFAULT_MUNICIPALITY),
        replicas=ReplicaSettings(
            redis_url=env.get(REDIS_URL_ENV) or None,
            lease_s=float(replicas.get("lease_seconds", 15.0)),
            update_lease_s=float(replicas.get("update_lease_seconds", 30.0)),
            send_per_second=float(replicas.get("send_per_second", 30.0)),
        ),
    )
    cities = data.get("municipalities") or LineDict()
    extra = []
    for name, section in cities.items():
        where = f"{source}:{cities.line_of(name)}"
        if not isinstance(name, str) or not re.fullmatch(_CITY_NAME, name):
            raise ConfigError(f"{where}: municipality names are lower-case letters, digits and -, such as "
                              f"'musterstadt', not {_shown(name)}")
        if name in {config.municipality, *(c.municipality for c in extra)}:
            raise ConfigError(f"{where}: municipality '{name}' is configured twice")
        if not isinstance(section, LineDict):
            raise ConfigError(f"{where}: 'municipalities.{name}' must be a section of settings (catalogue, telegram, matrix)")
        _check(section, _CITY_SCHEMA, source, f"municipalities.{name}.")  # type: ignore[arg-type]
        extra.append(_city(config, name, section, base, env, source))
    return replace(config, municipalities=tuple(extra))


def _city(shared: Config, name: str, data: LineDict, base: Path, env, source: Path | None) -> Config:
    """A further municipality: its own catalogue (default offers/<name>/ next to the config), bots
    and admins; secrets from the environment variables its section names."""
    where = f"{source}:{data.line_of('default_language')}"
    lang = data.get("default_language", shared.default_language)
    if lang not in LANGUAGES:
        raise ConfigError(f"{where}: unknown default_language '{lang}' (use one of {', '.join(LANGUAGES)})")
    telegram = data.get("telegram") or LineDict()
    matrix = data.get("matrix") or LineDict()
    token_env = telegram.get("token_env")
    if telegram and not token_env:
        raise ConfigError(f"{source}:{data.line_of('telegram')}: municipalities.{name}.telegram needs token_env, the "
                          "environment variable that holds this city's bot token")
    scoped = {**env, TELEGRAM_TOKEN_ENV: env.get(token_env, "") if token_env else "",
              TELEGRAM_WEBHOOK_SECRET_ENV: env.get(telegram.get("secret_env", TELEGRAM_WEBHOOK_SECRET_ENV), "")}
    admins = tuple(int(a) for a in telegram.get("admins", []))
    return replace(
        shared, municipality=name,
        catalogue=base / data["catalogue"] if "catalogue" in data else base / "offers" / name,
        default_language=lang,
        match_threshold=(data.get("matching") or {}).get("threshold", shared.match_threshold),
        telegram=_telegram(telegram, admins, scoped, source),
        matrix=MatrixSettings(
            homeserver=matrix.get("homeserver"), user_id=matrix.get("user_id"),
            token=env.get(matrix["token_env"]) if "token_env" in matrix else None,
            password=env.get(matrix["password_env"]) if "password_env" in matrix else None,
            command_prefix=matrix.get("command_prefix", "!lotse"),
            allowed_servers=tuple(str(s) for s in matrix.get("allowed_servers", [])),
            admins=tuple(str(a) for a in matrix.get("admins", [])),
        ),
        handover=_handover(data["handover"], source) if "handover" in data else shared.handover,
        municipalities=(),
    )


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


def _handover(section: dict, source: Path | None) -> HandoverSettings:
    from bot.handover.hours import HoursError, parse_hours

    settings = HandoverSettings(room=section.get("room"), hours=tuple(section.get("hours", [])),
                                timezone=section.get("timezone", "Europe/Berlin"))
    try:
        parse_hours(settings.hours, settings.timezone)
    except HoursError as exc:
        line = section.line_of("hours") if isinstance(section, LineDict) else 0
        raise ConfigError(f"{source}:{line}: 'handover' {exc}") from None
    return settings
