"""The workbench over HTTP (Starlette): sign-in, dashboard, edit, preview, history, inbox,
translation review, links and figures. Plain HTML forms; every page works without JavaScript.

Security: every page but sign-in needs a session (a random token in a Secure, HttpOnly,
SameSite=Strict cookie; only its hash is stored); every form carries the session's CSRF token;
sign-in is rate-limited; roles are checked here, on the server, for every change; templates
escape every value (a title with <script> is shown as text)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.languages import SOURCE_LANGUAGE, is_rtl, native_name
from bot.reply import Incoming
from bot.web import accounts, items
from bot.web.attention import attention
from bot.web.items import ItemNotFound
from bot.web.workbench import Workbench

HERE = Path(__file__).parent
COOKIE, LOGIN_COOKIE = "workbench", "workbench_login"
Handler = Callable[[Request, accounts.Session], Awaitable[Response]]


class WebApp:
    def __init__(self, workbench: Workbench, secure_cookies: bool = True, config=None) -> None:
        self.bench, self.secure, self.config = workbench, secure_cookies, config
        self.limiter = accounts.LoginLimiter()
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"], default=True))
        self.templates.globals.update(native_name=native_name, is_rtl=is_rtl, SOURCE=SOURCE_LANGUAGE)
        self._attention: tuple[str, object] | None = None

    # -- plumbing -----------------------------------------------------------------------------
    def render(self, name: str, request: Request, status: int = 200, **context) -> HTMLResponse:
        page = self.templates.get_template(name).render(request=request, catalogue=self.bench.catalogue, **context)
        return HTMLResponse(page, status_code=status)

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page for signed-in editors; a change (POST) must carry the session's CSRF token."""
        async def endpoint(request: Request) -> Response:
            session = await accounts.session_of(self.bench.db, request.cookies.get(COOKIE), self.bench.city)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
                    return self.render("error.html", request, 403, session=session,
                                       message="This form is out of date (its security token is missing or wrong). "
                                               "Go back, reload the page and send it again.")
            try:
                return await handler(request, session)
            except ItemNotFound:
                return self.render("error.html", request, 404, session=session, message="There is no such item.")
        return endpoint

    def forbidden(self, request: Request, session: accounts.Session, lang: str) -> HTMLResponse:
        return self.render("error.html", request, 403, session=session,
                           message=f"Your role ({session.account.role}) may not change texts in {native_name(lang)}.")

    def routes(self) -> list:
        p = self.page
        return [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", p(self.logout), methods=["POST"]),
            Route("/", p(self.dashboard)),
            Route("/edit/{kind}/{ident}/{lang}", p(self.edit), methods=["GET", "POST"]),
            Route("/preview/{ident}/{lang}", p(self.preview)),
            Route("/history/{kind}/{ident}/{lang}", p(self.history)),
            Route("/revert/{number:int}", p(self.revert), methods=["POST"]),
            Route("/inbox", p(self.inbox), methods=["GET"]),
            Route("/inbox/{number:int}", p(self.decide), methods=["POST"]),
            Route("/translations/{lang}", p(self.translations)),
            Route("/items/{kind}", p(self.items)),
            Route("/links", p(self.links)),
            Route("/poster/{lang}/{topic}.svg", p(self.poster)),
            Route("/figures", p(self.figures)),
            Route("/figures.csv", p(self.figures_csv)),
            Route("/accounts", p(self.accounts)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

    def app(self) -> Starlette:
        async def headers(request: Request, call_next):
            response = await call_next(request)
            response.headers.setdefault("Content-Security-Policy",
                                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        from starlette.middleware import Middleware
        from starlette.middleware.base import BaseHTTPMiddleware

        return Starlette(routes=self.routes(), middleware=[Middleware(BaseHTTPMiddleware, dispatch=headers)])

    # -- sign-in --------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        target = request.query_params.get("next", "/")
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = "/"  # never a redirect to another site
        if request.method == "GET":
            return self._login_page(request, target)
        form = await request.form()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(str(form.get("csrf", "")), expected):
            return self._login_page(request, target, "The sign-in form was out of date; please try again.", 403)
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
        keys = (f"address:{request.client.host if request.client else '-'}", f"name:{name}")
        now = time.monotonic()
        if self.limiter.blocked(keys, now):
            return self._login_page(request, target, "Too many failed attempts; wait 15 minutes and try again.", 429)
        account = await accounts.verify(self.bench.db, name, password, self.bench.city)
        if account is None:
            self.limiter.failed(keys, now)
            return self._login_page(request, target, "Wrong name or password.", 401)
        token, _ = await accounts.start_session(self.bench.db, account)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=accounts.SESSION_HOURS * 3600, httponly=True,
                            secure=self.secure, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    def _login_page(self, request: Request, target: str, error: str | None = None, status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render("login.html", request, status, csrf=token, target=target, error=error, session=None)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, secure=self.secure, samesite="strict")
        return response

    async def logout(self, request: Request, session: accounts.Session) -> Response:
        await accounts.end_session(self.bench.db, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- pages ------------------------------------------------------------------------------------
    def _attention_now(self):
        catalogue = self.bench.catalogue
        if self._attention is None or self._attention[0] != catalogue.version:
            self._attention = (catalogue.version, attention(catalogue))
        return self._attention[1]

    async def dashboard(self, request: Request, session: accounts.Session) -> Response:
        inbox = await self.bench.inbox(limit=10)
        return self.render("dashboard.html", request, session=session, found=self._attention_now(), inbox=inbox,
                           not_helpful=(await self.bench.not_helpful())[:10])

    async def edit(self, request: Request, session: accounts.Session) -> Response:
        kind, ident, lang = (request.path_params[k] for k in ("kind", "ident", "lang"))
        ref = self.bench.ref(kind, ident, lang)
        german = None if ref.german else self.bench.values(items.ItemRef(kind, ident, SOURCE_LANGUAGE))
        if request.method == "GET":
            values = self.bench.values(ref)
            return self._edit_page(request, session, ref, values, items.version(values), german)
        if not session.account.may_edit(lang):
            return self.forbidden(request, session, lang)
        form = await request.form()
        sent = {key: str(value) for key, value in form.items()}
        # A form without its base version counts as based on none: a conflict, never a blind overwrite.
        saved = await self.bench.save(ref, sent, sent.get("base", ""), session.account.name)
        if saved.ok:
            return RedirectResponse(f"/edit/{kind}/{ident}/{lang}?saved=1", status_code=303)
        if saved.conflict is not None:
            # Their text stays in the form; based on what is saved now, a second save replaces it.
            return self._edit_page(request, session, ref, saved.values, items.version(saved.conflict), german,
                                   status=409, conflict=saved.conflict)
        return self._edit_page(request, session, ref, saved.values, sent.get("base", ""), german, status=422,
                               problems=saved.problems, general=saved.general)

    def _edit_page(self, request, session, ref, values, base, german, status=200, **extra) -> Response:
        catalogue = self.bench.catalogue
        if ref.kind == "notice":
            outdated = ref.lang in catalogue.notices[ref.ident].outdated
        else:
            text = (catalogue.offers if ref.kind == "offer" else catalogue.offices)[ref.ident].texts.get(ref.lang)
            outdated = bool(text is not None and text.outdated)
        extra.setdefault("outdated", outdated)
        return self.render("edit.html", request, status, session=session, ref=ref, values=values, base=base,
                           german=german, may_edit=session.account.may_edit(ref.lang),
                           saved=request.query_params.get("saved") == "1", **extra)

    async def preview(self, request: Request, session: accounts.Session) -> Response:
        ident, lang = request.path_params["ident"], request.path_params["lang"]
        self.bench.ref("offer", ident, lang)
        # Exactly what the bot sends: the engine's card, rendered by the Telegram/Matrix HTML renderer.
        reply = self.bench.engine.handle(Incoming(user=f"workbench-preview-{session.account.name}",
                                                  payload=f"o:{ident}:card", chosen_language=lang))
        messages = [(html, [[b.label for b in row] for row in message.buttons])
                    for html, message in zip(reply.html_messages(), reply.messages, strict=True)]
        return self.render("preview.html", request, session=session, ident=ident, lang=lang, messages=messages,
                           rtl=reply.rtl)

    async def history(self, request: Request, session: accounts.Session) -> Response:
        ref = self.bench.ref(*(request.path_params[k] for k in ("kind", "ident", "lang")))
        return self.render("history.html", request, session=session, ref=ref, revisions=await self.bench.history(ref),
                           may_edit=session.account.may_edit(ref.lang))

    async def revert(self, request: Request, session: accounts.Session) -> Response:
        found = await self.bench.revision(request.path_params["number"])
        if found is None:
            raise ItemNotFound(str(request.path_params["number"]))
        ref, before = found
        if not session.account.may_edit(ref.lang):
            return self.forbidden(request, session, ref.lang)
        saved = await self.bench.save(ref, before, None, session.account.name)
        if saved.ok:
            return RedirectResponse(f"/history/{ref.kind}/{ref.ident}/{ref.lang}", status_code=303)
        return self._edit_page(request, session, ref, saved.values, items.version(self.bench.values(ref)),
                               None if ref.german else self.bench.values(items.ItemRef(ref.kind, ref.ident, "de")),
                               status=422, problems=saved.problems, general=saved.general)

    async def inbox(self, request: Request, session: accounts.Session) -> Response:
        questions = await self.bench.inbox()
        for question in questions:
            question["nearest"] = self.bench.nearest(question["text"], question["lang"])
        return self.render("inbox.html", request, session=session, questions=questions,
                           not_helpful=await self.bench.not_helpful(), no_offer=await self.bench.no_offer_list(),
                           message=request.query_params.get("message"))

    async def decide(self, request: Request, session: accounts.Session) -> Response:
        number = request.path_params["number"]
        form = await request.form()
        question = await self.bench.question(number)
        if question is None:
            return RedirectResponse("/inbox", status_code=303)
        if not session.account.may_edit(question["lang"]):
            return self.forbidden(request, session, question["lang"])
        action = str(form.get("action", ""))
        if action == "example":
            offer = str(form.get("offer", ""))
            saved = await self.bench.add_example(number, offer, session.account.name)
            if saved is not None and not saved.ok:
                problems = [m for ms in saved.problems.values() for m in ms] + saved.general
                return RedirectResponse("/inbox?message=" + quote("Not added: " + "; ".join(problems)[:300]),
                                        status_code=303)
            return RedirectResponse("/inbox?message=" + quote(f"Added as an example of {offer}."), status_code=303)
        if action in ("no-offer", "dismissed"):
            await self.bench.decide(number, action, session.account.name)
        return RedirectResponse("/inbox", status_code=303)

    async def translations(self, request: Request, session: accounts.Session) -> Response:
        lang = request.path_params["lang"]
        if lang not in self.bench.catalogue.languages or lang == SOURCE_LANGUAGE:
            raise ItemNotFound(lang)
        waiting = self._attention_now().translations.get(lang, [])
        return self.render("translations.html", request, session=session, lang=lang, waiting=waiting,
                           **paged(request, waiting))

    async def items(self, request: Request, session: accounts.Session) -> Response:
        kind = request.path_params["kind"]
        if kind not in items.KINDS:
            raise ItemNotFound(kind)
        catalogue = self.bench.catalogue
        every = list({"offer": catalogue.offers, "office": catalogue.offices, "notice": catalogue.notices}[kind])
        return self.render("items.html", request, session=session, kind=kind, total=len(every), **paged(request, every))

    async def links(self, request: Request, session: accounts.Session) -> Response:
        from bot.editors import deep_link_payload, links

        catalogue = self.bench.catalogue
        rows = []
        for lang in catalogue.languages:
            for topic in catalogue.topics:
                payload = deep_link_payload(catalogue, lang, topic)
                found = links(self.config, payload) if self.config is not None else {}
                rows.append({"lang": lang, "topic": topic, "payload": payload, "telegram": found.get("telegram"),
                             "matrix": found.get("matrix")})
        referrals = await self._referrals()
        return self.render("links.html", request, session=session, rows=rows, referrals=referrals)

    async def _referrals(self) -> dict[str, int]:
        from sqlalchemy import select

        from bot.store.schema import referrals

        async with self.bench.db.connect() as conn:
            query = select(referrals).where(referrals.c.municipality == self.bench.city)
            return {r.payload: r.count for r in (await conn.execute(query)).all()}

    async def poster(self, request: Request, session: accounts.Session) -> Response:
        from bot.editors import deep_link_payload, links
        from bot.poster import poster_texts, render_svg

        lang, topic = request.path_params["lang"], request.path_params["topic"]
        catalogue = self.bench.catalogue
        if lang not in catalogue.languages or topic not in catalogue.topics or self.config is None:
            raise ItemNotFound(f"{lang}/{topic}")
        url = links(self.config, deep_link_payload(catalogue, lang, topic))["telegram"]
        if url is None:
            return self.render("error.html", request, 409, session=session,
                               message="Set telegram.username in the config to make poster links.")
        return Response(render_svg(poster_texts(catalogue, lang, topic), url, lang), media_type="image/svg+xml")

    async def _stats(self, request: Request):
        from bot.stats import collect

        weeks = request.query_params.get("weeks", "12")
        return await collect(self.bench.store, weeks=int(weeks) if weeks.isdigit() and 0 < int(weeks) <= 520 else 12)

    async def figures(self, request: Request, session: accounts.Session) -> Response:
        from bot.stats import HEADER

        stats = await self._stats(request)
        weekly: dict[str, list[int]] = {}
        for row in stats.rows:
            totals = weekly.setdefault(row[0], [0, 0, 0, 0])
            totals[0] += row[3]
            totals[1] += row[4]
            totals[2] += row[6]
            totals[3] += row[7]
        peak = max((t[0] for t in weekly.values()), default=0) or 1
        return self.render("figures.html", request, session=session, header=HEADER, rows=stats.rows,
                           weekly=sorted(weekly.items()), peak=peak)

    async def figures_csv(self, request: Request, session: accounts.Session) -> Response:
        from bot.stats import render_csv

        return Response(render_csv(await self._stats(request)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="bildungslotse-figures.csv"'})

    async def accounts(self, request: Request, session: accounts.Session) -> Response:
        if not session.account.is_admin:
            return self.render("error.html", request, 403, session=session, message="Only admins see the accounts.")
        return self.render("accounts.html", request, session=session,
                           accounts=await accounts.list_accounts(self.bench.db, self.bench.city))


PAGE = 200


def paged(request: Request, entries: list) -> dict:
    """One page of a long list (a catalogue of thousands of offers stays quick to show)."""
    pages = max(1, -(-len(entries) // PAGE))
    raw = request.query_params.get("page", "1")
    page = min(pages, int(raw)) if raw.isdigit() and int(raw) > 0 else 1
    return {"shown": entries[(page - 1) * PAGE:page * PAGE], "page": page, "pages": pages}
