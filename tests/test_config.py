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
