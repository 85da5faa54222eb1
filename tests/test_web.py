"""The editors' workbench over HTTP: sign-in, roles, CSRF, edits validated at their fields and
served by the bot at once, conflicts, preview, history and revert, the inbox, translation review."""

from __future__ import annotations

import contextlib
import re

import pytest

from bot.reply import Incoming
from tests.web_helpers import PASSWORD, client, csrf_of, form_fields, open_bench, sign_in

OFFER = "kita-anmeldung"


@pytest.fixture
async def bench(tmp_path, matcher):
    bench = await open_bench(tmp_path, matcher)
    yield bench
    await bench.store.close()


@contextlib.asynccontextmanager
async def signed_in(bench, name: str = "erika"):
    async with client(bench) as http:
        response = await sign_in(http, name)
        assert response.status_code == 303, response.text
        yield http


def card(bench, lang: str = "de", ident: str = OFFER) -> str:
    return bench.engine.handle(Incoming(user="t", payload=f"o:{ident}:card", chosen_language=lang)).plain()


async def test_every_page_without_a_session_goes_to_sign_in(bench):
    async with client(bench) as http:
        for path in ("/", f"/edit/offer/{OFFER}/de", f"/preview/{OFFER}/ar", f"/history/offer/{OFFER}/de",
                     "/inbox", "/translations/ar", "/items/offer", "/links", "/figures", "/figures.csv", "/accounts"):
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path
        for path in (f"/edit/offer/{OFFER}/de", "/inbox/1", "/revert/1", "/logout"):
            assert (await http.post(path, data={"title": "x"})).headers["location"].startswith("/login"), path


async def test_sign_in_sets_a_strict_cookie_and_wrong_passwords_are_limited(bench):
    async with client(bench) as http:
        response = await sign_in(http, "erika")
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
        assert "What needs attention" in (await http.get("/")).text
    async with client(bench) as http:
        for _ in range(5):
            form = await http.get("/login")
            wrong = await http.post("/login", data={"csrf": csrf_of(form.text), "name": "amir", "password": "nope"})
            assert wrong.status_code == 401
        form = await http.get("/login")
        blocked = await http.post("/login", data={"csrf": csrf_of(form.text), "name": "amir", "password": "nope"})
        assert blocked.status_code == 429 and "Too many" in blocked.text


async def test_a_form_without_its_csrf_token_is_refused(bench):
    async with signed_in(bench) as http:
        page = (await http.get(f"/edit/offer/{OFFER}/de")).text
        fields = form_fields(page) | {"title": "Ohne Token"}
        del fields["csrf"]
        refused = await http.post(f"/edit/offer/{OFFER}/de", data=fields)
        assert refused.status_code == 403
        wrong = await http.post(f"/edit/offer/{OFFER}/de", data=fields | {"csrf": "forged"})
        assert wrong.status_code == 403
    assert "Ohne Token" not in (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
    async with client(bench) as http:  # the sign-in form has its own token
        refused = await http.post("/login", data={"name": "erika", "password": "correct horse battery"})
        assert refused.status_code == 403


async def test_a_valid_edit_is_written_kept_as_a_revision_and_changes_the_bots_answer(bench):
    before_file = (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
    async with signed_in(bench) as http:
        fields = form_fields((await http.get(f"/edit/offer/{OFFER}/de")).text)
        fields["title"] = "Kita-Platz suchen mit Kibeka (neu)"
        saved = await http.post(f"/edit/offer/{OFFER}/de", data=fields)
        assert saved.status_code == 303
        assert "Kita-Platz suchen mit Kibeka (neu)" in card(bench)
        text = (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
        # Only the title's line changed: comments, order and quoting kept.
        changed = [(a, b) for a, b in zip(before_file.splitlines(), text.splitlines(), strict=True) if a != b]
        assert changed == [("    title: Kita-Platz über Kibeka suchen", "    title: Kita-Platz suchen mit Kibeka (neu)")]
        history = (await http.get(f"/history/offer/{OFFER}/de")).text
        assert "by erika" in history and "- Kita-Platz über Kibeka suchen" in history
        number = int(history.split('action="/revert/')[1].split('"')[0])
        reverted = await http.post(f"/revert/{number}", data={"csrf": csrf_of(history)})
        assert reverted.status_code == 303
    assert (bench.folder / "daycare.yaml").read_text(encoding="utf-8") == before_file
    assert "Kita-Platz über Kibeka suchen" in card(bench)


async def test_a_problem_is_shown_at_its_field_and_nothing_is_written(bench):
    before_file = (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
    async with signed_in(bench) as http:
        fields = form_fields((await http.get(f"/edit/offer/{OFFER}/de")).text)
        fields["cost"] = "{{eur:zwölf}}"
        fields["summary"] = ""
        page = await http.post(f"/edit/offer/{OFFER}/de", data=fields)
    assert page.status_code == 422
    cost = page.text.split('id="e-cost"')[1].split("</p>")[0]
    assert "malformed number" in cost
    summary = page.text.split('id="e-summary"')[1].split("</p>")[0]
    assert "missing &#39;summary&#39;" in summary
    assert "{{eur:zwölf}}" in page.text  # their text kept in the form
    assert (bench.folder / "daycare.yaml").read_text(encoding="utf-8") == before_file


async def test_the_second_save_of_an_old_version_is_a_conflict_and_keeps_their_text(bench):
    async with signed_in(bench, "erika") as first, signed_in(bench, "root") as second:
        page_one = (await first.get(f"/edit/offer/{OFFER}/de")).text
        page_two = (await second.get(f"/edit/offer/{OFFER}/de")).text
        assert (await first.post(f"/edit/offer/{OFFER}/de",
                                 data=form_fields(page_one) | {"who": "Eltern (erste Fassung)."})).status_code == 303
        conflict = await second.post(f"/edit/offer/{OFFER}/de", data=form_fields(page_two) | {"who": "Eltern (zweite)."})
        assert conflict.status_code == 409
        assert "Someone else saved this item" in conflict.text
        assert "Eltern (zweite)." in conflict.text and "Eltern (erste Fassung)." in conflict.text
        assert "erste Fassung" in (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
        # Saving again from the conflict page is deliberate: it replaces the text.
        again = await second.post(f"/edit/offer/{OFFER}/de", data=form_fields(conflict.text))
        assert again.status_code == 303
    assert "Eltern (zweite)." in (bench.folder / "daycare.yaml").read_text(encoding="utf-8")


async def test_a_translator_changes_only_their_language(bench):
    async with signed_in(bench, "amir") as http:
        for lang in ("fa", "de"):
            page = (await http.get(f"/edit/offer/{OFFER}/{lang}")).text
            assert "may read but not change" in page
            refused = await http.post(f"/edit/offer/{OFFER}/{lang}", data=form_fields(page) | {"title": "عنوان مرفوض QX7"})
            assert refused.status_code == 403
        page = (await http.get(f"/edit/offer/{OFFER}/ar")).text
        assert 'dir="rtl"' in page and 'id="de-title"' in page  # right to left, the German beside it
        baseless = {k: v for k, v in form_fields(page).items() if k != "base"} | {"title": "بلا أساس"}
        assert (await http.post(f"/edit/offer/{OFFER}/ar", data=baseless)).status_code == 409
        saved = await http.post(f"/edit/offer/{OFFER}/ar", data=form_fields(page) | {"title": "البحث عن مكان في الروضة"})
        assert saved.status_code == 303
    lang_files = {p.name: p.read_text(encoding="utf-8") for p in (bench.folder / "lang").iterdir()}
    assert "البحث عن مكان في الروضة" in lang_files["ar.yaml"]
    assert "QX7" not in "".join(lang_files.values()) + (bench.folder / "daycare.yaml").read_text(encoding="utf-8")


async def test_translation_review_marks_reviewed_with_the_source_hash(bench):
    from bot.catalogue.loader import offer_source_hash

    german = bench.catalogue.offers[OFFER].texts["de"]
    assert bench.catalogue.offers[OFFER].texts["ar"].status == "draft"
    drafted = card(bench, "ar")
    async with signed_in(bench, "amir") as http:
        review = (await http.get("/translations/ar")).text
        assert f"/edit/offer/{OFFER}/ar" in review
        fields = form_fields((await http.get(f"/edit/offer/{OFFER}/ar")).text) | {"status": "reviewed"}
        assert (await http.post(f"/edit/offer/{OFFER}/ar", data=fields)).status_code == 303
    text = bench.catalogue.offers[OFFER].texts["ar"]
    assert text.status == "reviewed" and not text.outdated
    assert offer_source_hash(german) in (bench.folder / "lang" / "ar.yaml").read_text(encoding="utf-8")
    assert card(bench, "ar") != drafted  # the draft notice is gone
    async with signed_in(bench, "amir") as http:
        assert f"/edit/offer/{OFFER}/ar" not in (await http.get("/translations/ar")).text


async def test_preview_is_the_bots_card_in_any_language(bench):
    async with signed_in(bench) as http:
        for lang in ("de", "fa"):
            page = await http.get(f"/preview/{OFFER}/{lang}")
            assert page.status_code == 200
            reply = bench.engine.handle(Incoming(user="p", payload=f"o:{OFFER}:card", chosen_language=lang))
            assert reply.html_messages()[0] in page.text
        assert 'dir="rtl"' in page.text


async def test_markup_in_a_field_is_text_in_the_workbench_and_in_the_bot(bench):
    script = '<script>alert("x")</script><b>fett</b>'
    async with signed_in(bench) as http:
        fields = form_fields((await http.get(f"/edit/offer/{OFFER}/de")).text)
        marked = {key: f"{fields[key]} {script}" for key in ("title", "summary", "who", "cost", "next")}
        assert (await http.post(f"/edit/offer/{OFFER}/de", data=fields | marked)).status_code == 303
        for path in (f"/edit/offer/{OFFER}/de", f"/preview/{OFFER}/de", f"/history/offer/{OFFER}/de"):
            page = (await http.get(path)).text
            assert "<script>alert" not in page and "&lt;script&gt;" in page, path
    html = bench.engine.handle(Incoming(user="t", payload=f"o:{OFFER}:card", chosen_language="de")).html_messages()[0]
    # Title, who, cost and next step, as text (the card shows the summary's first sentence only).
    assert "<script>" not in html and html.count("&lt;script&gt;") == 4


async def test_no_path_outside_the_catalogue_is_read_or_written(bench, tmp_path):
    outside = tmp_path / "secret.yaml"
    outside.write_text("offers: []\n", encoding="utf-8")
    async with signed_in(bench, "root") as http:
        for path in ("/edit/offer/..%2F..%2Fsecret/de", "/edit/offer/kita-anmeldung/..%2F..%2Fsecret",
                     "/edit/office/../secret/de", "/edit/catalogue/meta/de", "/static/..%2F..%2Fcatalogue%2Floader.py",
                     "/preview/kita-anmeldung/..%2Fsecret", "/translations/..%2Fsecret", "/poster/..%2Fx/daycare.svg"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert "offers: []" not in response.text
        page = (await http.get(f"/edit/offer/{OFFER}/de")).text
        response = await http.post("/edit/offer/..%2F..%2Fsecret/de", data=form_fields(page))
        assert response.status_code == 404
    assert outside.read_text(encoding="utf-8") == "offers: []\n"


async def test_inbox_question_becomes_an_example_or_is_set_aside(bench):
    bench.store.keep_unanswered("de", "wo finde ich einen platz im kinderhort für meine tochter")
    bench.store.keep_unanswered("de", "Wo kann ich Schach spielen?")
    bench.store.keep_unanswered("fa", "کجا شطرنج بازی کنم")
    await bench.store.flush()
    async with signed_in(bench) as http:
        inbox = (await http.get("/inbox")).text
        assert "Schach" in inbox and "kinderhort" in inbox
        assert "Only a translator for fa" in inbox  # an editor decides German questions only
        ids = {text: int(number) for number, text in
               re.findall(r'aria-label="Question (\d+)">\s*<p class="asked"><span[^>]*>([^<]+)<', inbox)}
        hort = ids["wo finde ich einen platz im kinderhort für meine tochter"]
        added = await http.post(f"/inbox/{hort}", data={"csrf": csrf_of(inbox), "action": "example", "offer": OFFER})
        assert "Added as an example" in (await http.get(added.headers["location"])).text
        chess = ids["Wo kann ich Schach spielen?"]
        await http.post(f"/inbox/{chess}", data={"csrf": csrf_of(inbox), "action": "no-offer"})
        refused = await http.post(f"/inbox/{ids['کجا شطرنج بازی کنم']}", data={"csrf": csrf_of(inbox), "action": "dismissed"})
        assert refused.status_code == 403
        again = await http.post(f"/inbox/{hort}", data={"csrf": csrf_of(inbox), "action": "example", "offer": OFFER})
        assert again.status_code == 303  # a second click (another tab) changes nothing
        await http.post(f"/inbox/{chess}", data={"csrf": csrf_of(inbox), "action": "dismissed"})
        after = (await http.get("/inbox")).text
    assert "wo finde ich einen platz im kinderhort für meine tochter" in bench.catalogue.offers[OFFER].texts["de"].examples
    assert '- "wo finde ich einen platz im kinderhort für meine tochter"' in (bench.folder / "daycare.yaml").read_text(encoding="utf-8")
    assert f'aria-label="Question {hort}"' not in after and f'aria-label="Question {chess}"' not in after
    assert "Wo kann ich Schach spielen?" in after.split("Collected for the city")[1]


async def test_dashboard_links_and_figures(bench):
    bench.store.record("feedback", "telegram", language="ar", topic="daycare", offer=OFFER, helpful=False)
    bench.store.record("question", "telegram", language="ar", topic="daycare", offer=OFFER, answered=True)
    await bench.store.flush()
    async with signed_in(bench, "root") as http:
        dashboard = (await http.get("/")).text
        assert f'href="/edit/offer/{OFFER}/ar">{OFFER}</a> (ar): 1×' in dashboard
        assert "/translations/ar" in dashboard
        figures = await http.get("/figures.csv")
        assert figures.headers["content-type"].startswith("text/csv") and "daycare,ar,1,1" in figures.text
        assert "Accounts" in (await http.get("/accounts")).text
        offers = (await http.get("/items/offer")).text
        assert all(f'href="/edit/offer/{ident}/de"' in offers for ident in bench.catalogue.offers)
        assert (await http.get("/items/notices")).status_code == 404
    async with signed_in(bench, "amir") as http:
        assert (await http.get("/accounts")).status_code == 403


async def test_an_office_is_edited_with_its_problems_at_their_fields(bench):
    office = "schlachthof"
    before_file = (bench.folder / "offices.yaml").read_text(encoding="utf-8")
    async with signed_in(bench) as http:
        fields = form_fields((await http.get(f"/edit/office/{office}/de")).text)
        assert fields["phone"] == "0561 98350-0" and fields["languages"] == ""
        page = await http.post(f"/edit/office/{office}/de", data=fields | {"phone": "call us", "website": "schlachthof"})
        assert page.status_code == 422
        assert "malformed phone number" in page.text.split('id="e-phone"')[1].split("</p>")[0]
        assert "malformed URL" in page.text.split('id="e-website"')[1].split("</p>")[0]
        assert (bench.folder / "offices.yaml").read_text(encoding="utf-8") == before_file
        renamed = fields | {"name": "Kulturzentrum Schlachthof Kassel (Test)"}
        assert (await http.post(f"/edit/office/{office}/de", data=renamed)).status_code == 303
        assert bench.catalogue.offices[office].name == "Kulturzentrum Schlachthof Kassel (Test)"
        # Signing out ends the session on the server: a copy of the cookie no longer opens a page.
        token = http.cookies["workbench"]
        async with client(bench) as copy:
            copy.cookies.set("workbench", token)
            assert (await copy.get("/")).status_code == 200
            dashboard = (await http.get("/")).text
            assert (await http.post("/logout", data={"csrf": csrf_of(dashboard)})).status_code == 303
            assert (await copy.get("/")).status_code == 303


async def test_sign_in_returns_to_the_page_asked_for_and_never_to_another_site(bench):
    async with client(bench) as http:
        for target, expected in (("/inbox", "/inbox"), ("//evil.example", "/"), ("/\\evil.example", "/"),
                                 ("https://evil.example/", "/")):
            form = await http.get("/login", params={"next": target})
            response = await http.post("/login", params={"next": target},
                                       data={"csrf": csrf_of(form.text), "name": "erika", "password": PASSWORD})
            assert response.headers["location"] == expected, target


async def test_a_notice_is_one_edit_for_every_offer_it_concerns(bench):
    notice = "zulassungsstopp-2026"
    async with signed_in(bench) as http:
        assert f'href="/edit/notice/{notice}/de"' in (await http.get("/items/notice")).text
        fields = form_fields((await http.get(f"/edit/notice/{notice}/de")).text)
        assert "integrationskurs" in fields["offers"].split("\n")
        changed = "Bitte beachten Sie: " + fields["text"]
        assert (await http.post(f"/edit/notice/{notice}/de", data=fields | {"text": changed})).status_code == 303
        broken = await http.post(f"/edit/notice/{notice}/de", data=form_fields(
            (await http.get(f"/edit/notice/{notice}/de")).text) | {"offers": "integrationskurs\nkein-solches-angebot"})
        assert "unknown offer &#39;kein-solches-angebot&#39;" in broken.text.split('id="e-offers"')[1].split("</p>")[0]
    assert "Bitte beachten Sie: " in card(bench, "de", "integrationskurs")
    assert "ar" in bench.catalogue.notices[notice].outdated  # the Arabic now shows the German until updated
    async with signed_in(bench, "amir") as http:
        fields = form_fields((await http.get(f"/edit/notice/{notice}/ar")).text) | {"status": "reviewed"}
        assert (await http.post(f"/edit/notice/{notice}/ar", data=fields)).status_code == 303
    assert "ar" not in bench.catalogue.notices[notice].outdated


async def test_links_and_posters_per_language_and_topic(bench):
    import httpx

    from bot.config import Config, TelegramSettings
    from bot.web.app import WebApp

    bench.store.count_referral("ar-daycare", True)
    await bench.store.flush()
    config = Config(telegram=TelegramSettings(username="lotse_test_bot"))
    app = WebApp(bench, config=config).app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        assert (await sign_in(http, "erika")).status_code == 303
        links = (await http.get("/links")).text
        row = links.split("https://t.me/lotse_test_bot?start=ar-daycare</a>")[1].split("</tr>")[0]
        assert "<td>1</td>" in row and 'href="/poster/ar/daycare.svg"' in row
        poster = await http.get("/poster/ar/daycare.svg")
        assert poster.headers["content-type"].startswith("image/svg+xml") and "<svg" in poster.text
        assert (await http.get("/poster/ar/no-such-topic.svg")).status_code == 404
