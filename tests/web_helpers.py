"""Shared by the workbench's tests: a catalogue copy, a store, accounts and a signed-in client."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx

from bot.catalogue import DEFAULT_CATALOGUE, load_catalogue
from bot.engine import Engine
from bot.store import Pseudonyms, Store, sqlite_url
from bot.web import accounts
from bot.web.app import WebApp
from bot.web.workbench import Workbench

PASSWORD = "correct horse battery"
ROLES = {"erika": "editor", "amir": "translator:ar", "root": "admin"}


def copy_catalogue(into: Path) -> Path:
    target = into / "kassel"
    shutil.copytree(DEFAULT_CATALOGUE, target)
    return target


async def open_bench(tmp: Path, matcher, reload=None) -> Workbench:
    folder = copy_catalogue(tmp)
    store = await Store.open(sqlite_url(tmp / "data"), Pseudonyms(b"k" * 32))
    for name, role in ROLES.items():
        await accounts.add_account(store.engine, name, role, PASSWORD)
    return Workbench(folder, Engine(load_catalogue(folder), matcher), store, reload=reload)


def client(bench: Workbench) -> httpx.AsyncClient:
    app = WebApp(bench, secure_cookies=True).app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


def base_of(page: str) -> str:
    return re.search(r'name="base" value="([^"]+)"', page)[1]


async def sign_in(http: httpx.AsyncClient, name: str) -> httpx.Response:
    form = await http.get("/login")
    return await http.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": PASSWORD})


def form_fields(page: str) -> dict[str, str]:
    """The values of an edit form's inputs and textareas, as a browser would send them."""
    import html

    found = {m[1]: html.unescape(m[2]) for m in re.finditer(r'<input id="f-[^"]+" name="([^"]+)" value="([^"]*)"', page)}
    found |= {m[1]: html.unescape(m[2]) for m in re.finditer(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>',
                                                              page, re.S)}
    if re.search(r'name="status" value="reviewed" checked', page):
        found["status"] = "reviewed"
    found["csrf"], found["base"] = csrf_of(page), base_of(page)
    return found
