"""A small Telegram Bot API server on 127.0.0.1 (aiohttp): the methods the bot uses, scripted
updates with real offset semantics, a record of every request, and injectable faults.

Not a mock of our code: the real python-telegram-bot Application talks HTTP to it through
`telegram.base_url`, exactly as it would to a self-hosted Bot API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT = {"id": 777000, "is_bot": True, "first_name": "Bildungslotse", "username": "lotse_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    ok: bool = True  # False when the server answered with an error (429, 502, ...)


@dataclass
class Faults:
    """Faults to inject: each counter is used up one request at a time."""

    send_429: int = 0  # sendMessage answers 429 with retry_after
    retry_after: int = 1
    updates_502: int = 0  # getUpdates answers 502 Bad Gateway
    updates_drop: int = 0  # getUpdates closes the connection without an answer
    send_502: int = 0  # sendMessage answers 502 Bad Gateway
    send_drop: int = 0  # sendMessage closes the connection without an answer
    send_hang: int = 0  # sendMessage answers only after hang_s (the client times out first)
    hang_s: float = 3.0
    send_403: int = 0  # sendMessage answers 403: the user blocked the bot


@dataclass
class FakeBotApi:
    token: str = "123456:TEST"
    calls: list[Call] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    updates: list[dict] = field(default_factory=list)  # not yet confirmed by an offset
    served_at: dict[int, float] = field(default_factory=dict)  # update id -> first served
    first_reply: dict[int, float] = field(default_factory=dict)  # chat id -> first message sent to it
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _messages: itertools.count = field(default_factory=lambda: itertools.count(1))
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None
    port: int = 0
    _closing: bool = False
    webhook: dict | None = None
    # Cleared: sends wait (a replica can be killed while its replies are in flight, not between a
    # delivered reply and its record). A send whose client is gone when they flow again is not
    # delivered, as a request that never reached Telegram.
    flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.flowing.set()

    # -- scripting -------------------------------------------------------------------------
    def user(self, uid: int = 1001, lang: str | None = "en", name: str = "Amal") -> dict:
        user = {"id": uid, "is_bot": False, "first_name": name}
        if lang:
            user["language_code"] = lang
        return user

    def chat(self, cid: int = 1001, kind: str = "private") -> dict:
        return {"id": cid, "type": kind, **({"title": "Elterncafé"} if kind != "private" else {"first_name": "Amal"})}

    def push(self, update: dict) -> int:
        update_id = next(self._ids)
        self.updates.append({"update_id": update_id, **update})
        self._new.set()
        return update_id

    def text(self, text: str, uid: int = 1001, lang: str | None = "en", chat: dict | None = None,
             entities: list[dict] | None = None) -> int:
        message = {"message_id": next(self._messages), "date": int(time.time()), "text": text,
                   "from": self.user(uid, lang), "chat": chat or self.chat(uid)}
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if entities:
            message["entities"] = entities
        return self.push({"message": message})

    def press(self, data: str, uid: int = 1001, lang: str | None = "en", chat: dict | None = None) -> int:
        message = {"message_id": next(self._messages), "date": int(time.time()), "text": "…",
                   "from": BOT | {"is_bot": True}, "chat": chat or self.chat(uid)}
        query = {"id": str(next(self._ids) * 7), "from": self.user(uid, lang), "chat_instance": "ci",
                 "data": data, "message": message}
        return self.push({"callback_query": query})

    def sent(self, method: str = "sendMessage", chat_id: int | None = None) -> list[dict]:
        return [c.params for c in self.calls if c.method == method and c.ok
                and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not do what was expected in time")
            await asyncio.sleep(0.01)

    # -- the server ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner:
            self._closing = True
            self._new.set()  # a long poll of a bot that is gone need not wait out its timeout
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = {k: _decode(v) for k, v in (await request.post()).items()}
        if method.startswith("send") and not self.flowing.is_set():
            await self.flowing.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the client went away meanwhile: nothing was sent
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.ok = False
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, status=404)
        response = await handler(request, params)
        call.ok = response.status == 200
        if call.ok and method == "sendMessage":
            self.first_reply.setdefault(int(params["chat_id"]), call.at)
        return response

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _m_getMe(self, request, params):
        return self._ok(BOT)

    async def _m_deleteWebhook(self, request, params):
        self.webhook = None
        return self._ok(True)

    async def _m_setWebhook(self, request, params):
        self.webhook = params
        return self._ok(True)

    async def _m_setMyCommands(self, request, params):
        return self._ok(True)

    async def _m_answerCallbackQuery(self, request, params):
        return self._ok(True)

    async def _m_getUpdates(self, request, params):
        if self.faults.updates_502 > 0:
            self.faults.updates_502 -= 1
            return web.Response(status=502, text="Bad Gateway")
        if self.faults.updates_drop > 0:
            self.faults.updates_drop -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        if not self.updates and timeout and not self._closing:
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), min(timeout, 30))
        batch = self.updates[:limit]
        now = time.monotonic()
        for update in batch:
            self.served_at.setdefault(update["update_id"], now)
        return self._ok(batch)

    async def _m_sendMessage(self, request, params):
        faults = self.faults
        if faults.send_502 > 0:
            faults.send_502 -= 1
            return web.Response(status=502, text="Bad Gateway")
        if faults.send_drop > 0:
            faults.send_drop -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if faults.send_hang > 0:
            faults.send_hang -= 1
            await asyncio.sleep(faults.hang_s)
            return web.Response(status=504, text="Gateway Timeout")  # nobody waits for this any more
        if faults.send_403 > 0:
            faults.send_403 -= 1
            return web.json_response({"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"}, status=403)
        if self.faults.send_429 > 0:
            self.faults.send_429 -= 1
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry later",
                                      "parameters": {"retry_after": self.faults.retry_after}}, status=429)
        text = params.get("text", "")
        if len(text) > 4096:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}, status=400)
        return self._ok(self._message(params, text=text))

    async def _m_sendVenue(self, request, params):
        return self._ok(self._message(params, venue={"location": {"latitude": params["latitude"], "longitude": params["longitude"]},
                                                     "title": params["title"], "address": params["address"]}))

    async def _m_sendChatAction(self, request, params):
        return self._ok(True)

    def _message(self, params: dict, **content) -> dict:
        chat_id = int(params["chat_id"])
        return {"message_id": next(self._messages), "date": int(time.time()), "from": BOT,
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"}, **content}


def _decode(value: Any) -> Any:
    """PTB sends each parameter form-encoded, nested ones as JSON text."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
