"""A reverse proxy on 127.0.0.1 in front of a real server (Synapse) that fails chosen requests:
message sends (PUT …/send/…) answered 502 or cut off, as a homeserver behind a flaky load
balancer would. Everything else passes through unchanged."""

from __future__ import annotations

import aiohttp
from aiohttp import web

HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class FaultyProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.send_502 = 0  # the next message sends answered 502 Bad Gateway
        self.send_drop = 0  # the next message sends cut off without an answer
        self.failed = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultyProxy:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False)
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._session:  # first: a long-polling sync in hand ends now instead of after its 30 s
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "PUT" and "/send/" in request.path:
            if self.send_502 > 0:
                self.send_502 -= 1
                self.failed += 1
                return web.Response(status=502, text="Bad Gateway")
            if self.send_drop > 0:
                self.send_drop -= 1
                self.failed += 1
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        try:
            async with self._session.request(request.method, self.target + request.path_qs, headers=headers,
                                             data=await request.read()) as upstream:
                body = await upstream.read()
                kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
                return web.Response(status=upstream.status, body=body, headers=kept)
        except (aiohttp.ClientError, RuntimeError):  # stopping: the session is closed
            return web.Response(status=502, text="Bad Gateway")
