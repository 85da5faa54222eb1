"""The workbench in a real browser: Debian's Chromium, headless, driven by Playwright (which
must not download a browser of its own). One server and one browser for the module; each test
its own browser context (its own cookies)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from bot.reply import Incoming
from bot.web.app import WebApp
from tests.web_helpers import PASSWORD, open_bench

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

OFFER, OTHER = "kita-anmeldung", "kita-beitragsfrei"


class Server:
    """The workbench served by uvicorn on its own event loop in a thread, as `bildungslotse web` runs it."""

    def __init__(self, tmp, matcher) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.bench = self.call(open_bench(tmp, matcher))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(WebApp(self.bench).app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.serving = asyncio.run_coroutine_threadsafe(self.server.serve(), self.loop)
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.url = f"http://localhost:{self.port}"  # a Secure cookie is kept on localhost without TLS

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def answer(self, ident: str, lang: str) -> str:
        return self.bench.engine.handle(Incoming(user="b", payload=f"o:{ident}:card", chosen_language=lang)).plain()

    def stop(self) -> None:
        self.server.should_exit = True
        self.serving.result(30)
        self.call(self.bench.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def server(tmp_path_factory, matcher):
    running = Server(tmp_path_factory.mktemp("web"), matcher)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):  # a failure, not a skip: these tests are the workbench's proof
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def sign_in(page, server: Server, name: str = "erika", then: str = "/") -> None:
    page.goto(server.url + then)
    assert "/login" in page.url
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + then)


def test_sign_in_leads_to_the_dashboard(page, server):
    sign_in(page, server)
    assert page.get_by_role("heading", name="What needs attention").is_visible()
    assert page.get_by_role("button", name="Sign out").is_visible()


def test_a_validation_error_is_shown_at_its_field(page, server):
    sign_in(page, server, then=f"/edit/offer/{OFFER}/de")
    page.get_by_label("cost", exact=True).fill("Kostet {{eur:zwölf}}")
    page.get_by_role("button", name="Save").click()
    problem = page.locator("#e-cost")
    assert "malformed number" in problem.inner_text()
    assert page.get_by_label("cost", exact=True).get_attribute("aria-invalid") == "true"
    assert page.get_by_label("cost", exact=True).input_value() == "Kostet {{eur:zwölf}}"
    assert "zwölf" not in server.answer(OFFER, "de")


def test_a_valid_edit_changes_the_bots_answer(page, server):
    sign_in(page, server, then=f"/edit/offer/{OFFER}/de")
    page.get_by_label("summary", exact=True).fill("Im Portal Kibeka fragen Sie Plätze in allen Kitas der Stadt an.")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text().startswith("Saved")
    assert "Im Portal Kibeka fragen Sie Plätze in allen Kitas der Stadt an." in server.answer(OFFER, "de")


def test_preview_shows_the_card_in_arabic(page, server):
    sign_in(page, server, then=f"/preview/{OFFER}/ar")
    bubble = page.locator(".chat .bubble").first
    assert server.bench.catalogue.offers[OFFER].text("ar").title in bubble.inner_text()
    assert page.locator(".chat").first.get_attribute("dir") == "rtl"


def test_an_inbox_question_becomes_an_example(page, server):
    question = "kita oder krippe für mein baby mit 10 monaten, wo anmelden"
    server.bench.store.keep_unanswered("de", question)
    server.call(server.bench.store.flush())
    sign_in(page, server, then="/inbox")
    section = page.locator("section.question", has_text=question)
    section.get_by_label("or another offer").fill(OFFER)
    section.get_by_role("button", name="Add as example", exact=True).click()
    assert f"Added as an example of {OFFER}" in page.get_by_role("status").inner_text()
    assert page.locator("section.question", has_text=question).count() == 0
    assert question in server.bench.catalogue.offers[OFFER].texts["de"].examples


def test_a_translator_reviews_a_draft(page, server):
    assert server.bench.catalogue.offers[OTHER].texts["ar"].status == "draft"
    sign_in(page, server, "amir", then="/translations/ar")
    page.get_by_role("link", name=f"offer {OTHER}", exact=True).click()
    assert page.locator("#de-title").inner_text() == server.bench.catalogue.offers[OTHER].texts["de"].title
    assert page.get_by_label("title", exact=True).get_attribute("dir") == "rtl"
    page.get_by_label("Reviewed by a native speaker", exact=False).check()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text().startswith("Saved")
    assert server.bench.catalogue.offers[OTHER].texts["ar"].status == "reviewed"


def test_the_second_of_two_editors_gets_a_conflict_and_keeps_their_text(browser, server):
    first, second = browser.new_context(), browser.new_context()
    try:
        one, two = first.new_page(), second.new_page()
        sign_in(one, server, "erika", then=f"/edit/offer/{OTHER}/de")
        sign_in(two, server, "root", then=f"/edit/offer/{OTHER}/de")
        one.get_by_label("who", exact=True).fill("Eltern von Kita-Kindern (Fassung A).")
        one.get_by_role("button", name="Save").click()
        assert one.get_by_role("status").inner_text().startswith("Saved")
        two.get_by_label("who", exact=True).fill("Eltern von Kita-Kindern (Fassung B).")
        two.get_by_role("button", name="Save").click()
        assert "Someone else saved this item" in two.get_by_role("alert").first.inner_text()
        assert two.get_by_label("who", exact=True).input_value() == "Eltern von Kita-Kindern (Fassung B)."
        assert "Fassung A" in server.answer(OTHER, "de")
    finally:
        first.close()
        second.close()
