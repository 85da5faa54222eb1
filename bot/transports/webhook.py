"""The HTTP endpoint Telegram posts updates to (webhook mode), one server for every city's bot.

Unlike python-telegram-bot's own webhook server, which answers 200 as soon as an update is
queued, this one answers only when the update is answered (or was answered before): a replica
that dies in between leaves the request without a 200, and Telegram delivers the update again,
to whichever replica the load balancer picks. The secret token is checked on every request.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)
Handler = Callable[[dict], Awaitable[int]]  # the update -> the HTTP status to answer with
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookServer:
    def __init__(self, listen: str, port: int) -> None:
        self.listen, self.port = listen, port
        self.routes: dict[str, tuple[str | None, Handler]] = {}
        self._runner: web.AppRunner | None = None

    def add(self, path: str, secret: str | None, handler: Handler) -> None:
        self.routes["/" + path.strip("/")] = (secret, handler)

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/{path:.*}", self._handle)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        log.info("webhook: listening on %s:%d for %s", self.listen, self.port, ", ".join(sorted(self.routes)))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _handle(self, request: web.Request) -> web.Response:
        route = self.routes.get("/" + request.match_info["path"].strip("/"))
        if route is None:
            return web.Response(status=404)
        secret, handler = route
        given = request.headers.get(SECRET_HEADER, "")
        if secret and not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            data = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400)
        try:
            status = await handler(data)
        except Exception:  # noqa: BLE001 - Telegram delivers it again
            log.exception("webhook: update %s failed; Telegram will deliver it again", data.get("update_id"))
            status = 500
        return web.Response(status=status)
