"""Settings: every wrong value is refused with one sentence naming file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config


def _refused(tmp_path: Path, content: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # A few hundred bytes that expand to 9**9 entries once walked.
        ("".join(f"b{n}: &b{n} [{', '.join([f'*b{n - 1}'] * 9) if n else 'x'}]\n" for n in range(9))
         + "default_language: *b8\n", ":2: YAML aliases (*name) are not allowed: write the value out instead"),
        ("data_dir: data\n[a, b]: 1\n", ":2: a key must be text, not a list: put it in quotes"),
        ("telegram:\n  admins: []\n  yes: 1\n", ":3: a key must be text, not true/false: put it in quotes"),
    ],
)
def test_hostile_yaml_in_the_config_is_one_sentence(tmp_path, content, expected):
    assert _refused(tmp_path, content).endswith(expected)


DAYS = "must be a whole number of days from 1 to 3650"
THRESHOLD = "must be a probability from 0 to 1 (such as 0.5), or left out for the fitted one"
TELEGRAM_IDS = "must be a list of numeric Telegram user ids such as 123456789"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # YAML's true is an int to Python: it was taken as 1 day.
        ("privacy:\n  retention_days: true\n", f":2: 'privacy.retention_days' {DAYS}, not true"),
        ("privacy:\n  retention_days: 0\n", f":2: 'privacy.retention_days' {DAYS}, not 0"),
        ("privacy:\n  retention_days: 2.5\n", f":2: 'privacy.retention_days' {DAYS}, not 2.5"),
        ("privacy:\n  retention_days: 1000000000\n", f":2: 'privacy.retention_days' {DAYS}, not 1000000000"),
        ("privacy:\n  retention_days:\n", f":2: 'privacy.retention_days' {DAYS}, not empty"),
        # NaN compares false with everything: every question would be "nothing fits".
        ("matching:\n  threshold: .nan\n", f":2: 'matching.threshold' {THRESHOLD}, not nan"),
        ("matching:\n  threshold: -5\n", f":2: 'matching.threshold' {THRESHOLD}, not -5"),
        ("matching:\n  threshold: .inf\n", f":2: 'matching.threshold' {THRESHOLD}, not inf"),
        ("matching:\n  threshold: true\n", f":2: 'matching.threshold' {THRESHOLD}, not true"),
        # [true] became user 1 and [12.9] user 12: admin rights for someone else.
        ("telegram:\n  admins: [true]\n", f":2: 'telegram.admins' {TELEGRAM_IDS}, and true is not one"),
        ("telegram:\n  admins: [12.9]\n", f":2: 'telegram.admins' {TELEGRAM_IDS}, and 12.9 is not one"),
        ("telegram:\n  admins: [123, '²']\n", f":2: 'telegram.admins' {TELEGRAM_IDS}, and '²' is not one"),
        ("telegram:\n  admins: [-3]\n", f":2: 'telegram.admins' {TELEGRAM_IDS}, and -3 is not one"),
        ("telegram:\n  admins: 123\n", f":2: 'telegram.admins' {TELEGRAM_IDS}, not 123"),
        ("telegram:\n  webhook:\n    port: 70000\n", ":3: 'telegram.webhook.port' must be a port number from 1 to 65535, not 70000"),
        ("telegram:\n  base_url: api.telegram.org\n",
         ":2: 'telegram.base_url' must be a URL starting with https:// or http://, not 'api.telegram.org'"),
        ("matrix:\n  admins: ['@editor:example.org', editor]\n",
         ":2: 'matrix.admins' must be a list of Matrix user ids such as '@editor:example.org', and 'editor' is not one"),
        ("matrix:\n  allowed_servers: [1]\n",
         ":2: 'matrix.allowed_servers' must be a list of server names such as 'example.org', and 1 is not one"),
        ("data_dir: [a]\n", ":1: 'data_dir' must be the path of a folder, not a list"),
    ],
)
def test_a_wrong_type_or_range_is_one_sentence_with_its_line(tmp_path, content, expected):
    assert _refused(tmp_path, content).endswith(expected)


def test_right_values_are_taken_as_written(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("privacy:\n  retention_days: 7\nmatching:\n  threshold: 0\ntelegram:\n  admins: [123456789, '42']\n"
                    "  webhook:\n    port: 8443\nmatrix:\n  admins: ['@editor:example.org']\n", encoding="utf-8")
    config = load_config(path)
    assert config.retention_days == 7 and config.match_threshold == 0.0
    assert config.telegram.admins == (123456789, 42) and config.matrix.admins == ("@editor:example.org",)
