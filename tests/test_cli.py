from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


def test_ask_json_contract(capsys):
    assert main(["ask", "--json", "kreş nasıl bulurum"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"question", "language", "category", "matches", "reply"}
    assert data["language"] == "tr" and data["category"] == "daycare"
    assert 1 <= len(data["matches"]) <= 5
    assert all(set(m) == {"offer", "category", "score"} and isinstance(m["score"], float) for m in data["matches"])
    assert data["reply"]


def test_ask_json_null_category_when_nothing_fits(capsys):
    assert main(["ask", "--json", "--lang", "de", "Wie wird das Wetter morgen?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["category"] is None and data["language"] == "de"


def test_ask_stdin_answers_line_by_line_and_flushes():
    proc = subprocess.Popen([sys.executable, "-m", "bot", "ask", "--json", "-"], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    proc.stdin.write("де курси німецької\n")
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())  # arrives before stdin is closed: flushed per line
    assert first["language"] == "uk" and first["category"] == "language-course"
    proc.stdin.write("\n\x00\u202e\nKita\n")
    proc.stdin.close()
    rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert proc.wait(timeout=60) == 0
    assert len(rest) == 3


def test_plain_ask(capsys, catalogue):
    assert main(["ask", "--lang", "en", "evening German course for adults"]) == 0
    out = capsys.readouterr().out
    assert any(catalogue.offers[i].text("en").title in out for i in catalogue.by_topic["language-course"])


def test_wrong_lang_code_is_a_usage_error():
    result = run("ask", "--lang", "xx", "hello")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_validate_exit_codes(catalogue_copy, capsys):
    assert main(["validate"]) == 0
    text = (catalogue_copy / "daycare.yaml").read_text(encoding="utf-8")
    (catalogue_copy / "daycare.yaml").write_text(text.replace("office: kita-kassel", "office: jugendamtt", 1), encoding="utf-8")
    assert main(["validate", str(catalogue_copy)]) == 1
    assert "unknown office 'jugendamtt'" in capsys.readouterr().out


def test_broken_catalogue_gives_a_clear_message(catalogue_copy):
    (catalogue_copy / "offices.yaml").write_text("offices: [\n", encoding="utf-8")
    result = run("--catalogue", str(catalogue_copy), "ask", "Kita")
    assert result.returncode == 1
    assert "offices.yaml" in result.stderr and "Traceback" not in result.stderr


def test_missing_catalogue_gives_a_clear_message(tmp_path):
    result = run("--catalogue", str(tmp_path / "nope"), "ask", "Kita")
    assert result.returncode == 1 and "not a catalogue folder" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("matching: {threshold: high}\n", "'matching.threshold' must be a probability"),
        ("colour: blue\n", "unknown setting 'colour'"),
        ("default_language: xx\n", "unknown default_language 'xx'"),
        ("telegram: [\n", "YAML syntax"),
    ],
)
def test_broken_config_names_file_line_and_fix(tmp_path, content, message):
    config = tmp_path / "config.yaml"
    config.write_text(content, encoding="utf-8")
    result = run("--config", str(config), "ask", "Kita")
    assert result.returncode == 2
    assert message in result.stderr and str(config) in result.stderr and "Traceback" not in result.stderr


def test_example_config_is_valid():
    result = run("--config", str(ROOT / "config.example.yaml"), "ask", "--json", "Kita")
    assert result.returncode == 0, result.stderr


def test_run_without_token_names_the_variable():
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "MATRIX_ACCESS_TOKEN")}
    result = subprocess.run([sys.executable, "-m", "bot", "run"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 2 and "TELEGRAM_BOT_TOKEN" in result.stderr


def test_terminal_chat_numbers_buttons_and_follows_them(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = run("--config", str(config), "chat", stdin="Kita\n1\n/quit\n", env={"LANG": "de_DE.UTF-8"})
    assert result.returncode == 0, result.stderr
    assert "[1]" in result.stdout and "Kontakt" in result.stdout
    assert "➡️" in result.stdout and "📍" in result.stdout  # the card's next step, then the contact (choice 1)
    assert (tmp_path / "data" / "bildungslotse.db").exists() and (tmp_path / "data" / "secret.key").exists()


def test_thousand_questions_quickly():
    questions = "".join(f"Wo finde ich einen Deutschkurs Nummer {i}?\n" for i in range(1000))
    started = time.perf_counter()
    result = run("ask", "--json", "-", stdin=questions)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1000
    print(f"1000 questions in {elapsed:.2f} s")  # a figure for the log, not an assertion on time


def test_explain_shows_each_signal_and_the_fusion(capsys):
    assert main(["ask", "--explain", "Kita Platz für meinen Sohn"]) == 0
    out = capsys.readouterr().out
    for part in ("keywords:", "classifier:", "fused: kita-", "decision:", "weights of the offer scorer"):
        assert part in out, part
    assert "keywords for topic daycare" in out and "kita platz" in out


def test_explain_reads_its_questions_from_stdin_like_the_answers():
    result = run("ask", "--explain", "-", stdin="Kita Platz für meinen Sohn\n\n\x00\nwo ist ein Deutschkurs\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("decision:") == 2  # an empty line, or one of control characters, is no question
    assert "language: de" in result.stdout and "fused: kita-" in result.stdout


def test_stats_without_a_database_is_a_clear_error():
    result = run("stats", env={"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert result.returncode == 2 and "the database does not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_options_after_the_command_work(tmp_path, catalogue_copy):
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "MATRIX_ACCESS_TOKEN")}
    result = subprocess.run([sys.executable, "-m", "bot", "run", "--config", str(config)], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 2 and "TELEGRAM_BOT_TOKEN" in result.stderr, result.stderr  # read, not refused
    missing = run("run", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr
    (catalogue_copy / "offices.yaml").write_text("offices: [\n", encoding="utf-8")
    broken = run("ask", "--catalogue", str(catalogue_copy), "Kita")
    assert broken.returncode == 1 and "offices.yaml" in broken.stderr
    assert main(["--config", str(config), "ask", "--json", "Kita"]) == 0  # before the command, as always


def test_odd_bytes_and_numbers_end_neither_the_terminal_chat_nor_ask(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    lines = [b"Kita \xff\xfe", "²".encode(), "٣".encode(), b"9" * 5000, b"1", b"/quit"]
    chat = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "chat"], input=b"\n".join(lines) + b"\n",
                          capture_output=True, cwd=ROOT, timeout=120)
    assert chat.returncode == 0 and b"Traceback" not in chat.stderr, chat.stderr.decode(errors="replace")
    assert chat.stdout.decode().count("Kibeka") >= 1  # the question with a broken byte was answered
    ask = subprocess.run([sys.executable, "-m", "bot", "ask", "--json", "-"], input=b"Kita \xff\n\xc3\nDeutschkurs\n",
                         capture_output=True, cwd=ROOT, timeout=120)
    assert ask.returncode == 0, ask.stderr.decode(errors="replace")
    answers = [json.loads(line) for line in ask.stdout.decode().splitlines()]
    assert len(answers) == 3 and answers[0]["category"] == "daycare" and answers[2]["category"] == "language-course"


def test_a_short_secret_stops_the_bot_with_one_sentence(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = run("--config", str(config), "chat", stdin="/quit\n", env={"BILDUNGSLOTSE_SECRET": "s"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("bildungslotse: BILDUNGSLOTSE_SECRET is too short (1 bytes)")
