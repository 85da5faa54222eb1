"""The workbench's commands and settings: accounts from the command line, `web` in the config,
the workbench served inside the bot's process."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from bot.cli import main
from bot.config import ConfigError, load_config


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("data_dir: data\n", encoding="utf-8")
    monkeypatch.setenv("BILDUNGSLOTSE_SECRET", "s" * 32)
    return path


def editors(config_file, *args: str) -> int:
    return main(["--config", str(config_file), "editors", *args])


def test_editors_are_added_listed_given_a_new_password_and_removed(config_file, monkeypatch, capsys):
    monkeypatch.setenv("BILDUNGSLOTSE_EDITOR_PASSWORD", "a long enough password")
    assert editors(config_file, "add", "erika", "--role", "editor") == 0
    assert editors(config_file, "add", "amir", "--role", "translator:ar") == 0
    assert editors(config_file, "add", "erika", "--role", "admin") == 2
    assert "already an account 'erika'" in capsys.readouterr().err
    assert editors(config_file, "add", "zoe", "--role", "translator:xx") == 2
    assert "unknown role 'translator:xx'" in capsys.readouterr().err
    monkeypatch.setenv("BILDUNGSLOTSE_EDITOR_PASSWORD", "short")
    assert editors(config_file, "add", "zoe", "--role", "admin") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert editors(config_file, "list") == 0
    assert capsys.readouterr().out.splitlines() == ["amir\ttranslator:ar", "erika\teditor"]
    monkeypatch.setenv("BILDUNGSLOTSE_EDITOR_PASSWORD", "another long password")
    assert editors(config_file, "password", "erika") == 0
    assert editors(config_file, "password", "nobody") == 2
    assert editors(config_file, "remove", "amir") == 0
    assert editors(config_file, "remove", "amir") == 2
    capsys.readouterr()
    assert editors(config_file, "list") == 0
    assert capsys.readouterr().out.splitlines() == ["erika\teditor"]


def test_the_password_can_come_from_stdin(config_file, monkeypatch, capsys):
    import io

    monkeypatch.delenv("BILDUNGSLOTSE_EDITOR_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("piped password 123\n"))
    assert editors(config_file, "add", "root", "--role", "admin") == 0

    async def check() -> bool:
        from bot.store import Pseudonyms, Store, sqlite_url
        from bot.web import accounts

        store = await Store.open(sqlite_url(config_file.parent / "data"), Pseudonyms(b"s" * 32))
        try:
            return (await accounts.verify(store.engine, "root", "piped password 123")) is not None
        finally:
            await store.close()

    assert asyncio.run(check())


def test_web_settings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("web:\n  enabled: true\n  port: 8099\n  secure_cookies: false\n", encoding="utf-8")
    web = load_config(path).web
    assert (web.enabled, web.listen, web.port, web.secure_cookies) == (True, "127.0.0.1", 8099, False)
    path.write_text("web:\n  port: eighty\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="c.yaml:2: 'web.port'"):
        load_config(path)
    path.write_text("web:\n  enabled: yes please\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'web.enabled' must be true or false"):
        load_config(path)


async def test_the_bot_serves_the_workbench_in_its_own_process(tmp_path, engine):
    from dataclasses import replace

    from bot.config import Config, WebSettings
    from bot.runner import Runtime
    from bot.store import Pseudonyms, Store, sqlite_url
    from bot.web.serve import serve_inside

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = replace(Config(data_dir=tmp_path), web=WebSettings(enabled=True, port=port))
    store = await Store.open(sqlite_url(tmp_path), Pseudonyms(b"s" * 32))
    task = asyncio.create_task(serve_inside(config, Runtime(config, config.catalogue, engine, store)))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    response = await http.get("/")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert response.status_code == 303 and response.headers["location"] == "/login?next=%2F"
            login = await http.get("/login")
            assert "Sign in to the Bildungslotse workbench" in login.text
            assert "default-src 'self'" in login.headers["content-security-policy"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_a_bot_in_another_process_serves_an_edited_text_before_its_ranker_retrains(tmp_path, matcher, monkeypatch):
    import threading

    from bot import app
    from bot.catalogue import load_catalogue
    from bot.config import Config
    from bot.engine import Engine
    from bot.reply import Incoming
    from bot.runner import Runtime
    from tests.web_helpers import copy_catalogue

    folder = copy_catalogue(tmp_path)
    engine = Engine(load_catalogue(folder), matcher)
    retrained = threading.Event()

    def retraining(path, config):  # stands for the ranker's training, which takes seconds to a minute
        retrained.wait(30)
        return load_catalogue(path), matcher

    monkeypatch.setattr(app, "build_catalogue_and_matcher", retraining)
    runtime = Runtime(Config(data_dir=tmp_path / "data"), folder, engine, None, build=retraining)

    def card() -> str:
        return engine.handle(Incoming(user="c", payload="o:kita-anmeldung:card", chosen_language="de")).plain()

    path = folder / "daycare.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "title: Kita-Platz über Kibeka suchen", "title: Kita-Platz suchen (geändert)"), encoding="utf-8")
    reload = asyncio.create_task(runtime.reload())
    for _ in range(400):
        if "Kita-Platz suchen (geändert)" in card():
            break
        await asyncio.sleep(0.05)
    assert "Kita-Platz suchen (geändert)" in card()
    assert engine.matcher is matcher and not reload.done()  # served while the ranker still trains
    retrained.set()
    assert (await reload).startswith("Reloaded")
    # A broken edit is refused before anything is served.
    retrained.clear()
    path.write_text(path.read_text(encoding="utf-8").replace(
        "title: Kita-Platz suchen (geändert)", "title: ''"), encoding="utf-8")
    assert (await runtime.reload()).startswith("Not reloaded")
    assert "Kita-Platz suchen (geändert)" in card()
