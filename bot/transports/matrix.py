"""Matrix: matrix-nio's AsyncClient as a thin adapter around the service.

Our own sync loop: a batch is handled completely, then its `next_batch` is stored (durably, with
the batch's effects), so a restart neither repeats answered messages nor misses any. Each answered
event is marked in the store as it goes, so after a crash only the messages in flight can be
answered twice. Sending is retried through 5xx, timeouts and dropped connections; a batch whose
replies did not get through is handled again (its answered events skipped) before its position is
stored. On the very first start the history of rooms is skipped. Encrypted rooms work through
nio's vodozemac-based e2e support; the key store and the device id live in data_dir/matrix.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import re
import time
from collections import OrderedDict
from pathlib import Path

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomResolveAliasResponse,
    RoomSendError,
    SyncResponse,
    WhoamiResponse,
)
from nio.api import MessageDirection
from nio.exceptions import EncryptionError
from sqlalchemy.exc import SQLAlchemyError

from bot.cards import SHARE
from bot.config import MatrixSettings
from bot.handover.cases import CaseStore
from bot.handover.relay import age
from bot.news import PermanentSendError
from bot.reply import Button, Incoming, Reply
from bot.service import Service
from bot.store import Store, StoreError
from bot.store.privacy import private_dir
from bot.text import render_html, render_plain
from bot.transports import notices
from bot.transports.choices import by_number, choice, number_choices
from bot.transports.telegram import ADMIN_COMMANDS, USER_COMMANDS, AdminAction

log = logging.getLogger(__name__)
SYNC_FILTER = {
    "room": {"timeline": {"limit": 100}, "state": {"lazy_load_members": False}},
    "presence": {"types": []},
    "account_data": {"types": []},
}
KEY_WAIT_S = 8.0  # how long an undecryptable message waits for its key before we say so
COMMANDS = (*USER_COMMANDS, *ADMIN_COMMANDS)
SEND_ATTEMPTS = 5  # a send that fails on the way is tried this often (backoff 0.5, 1, 2, 4 s)
DEVICE_FILE = "device_id"


class SendFailed(Exception):
    """A message did not get through after the retries (the homeserver or the way to it failed)."""


class MatrixTransport:
    def __init__(self, settings: MatrixSettings, service: Service, store: Store, data_dir: Path,
                 admin: AdminAction | None = None, counsellors_room: str | None = None,
                 cases: CaseStore | None = None) -> None:
        if not (settings.homeserver and settings.user_id and (settings.token or settings.password)):
            raise ValueError("matrix needs homeserver, user_id and a token or password")
        self.settings, self.service, self.store, self.admin = settings, service, store, admin
        self.key_dir = data_dir / "matrix"
        self.client: AsyncClient | None = None
        self._stop = asyncio.Event()
        self._choices: OrderedDict[tuple[str, str], dict[int, Button]] = OrderedDict()
        self._joined_at: dict[str, int] = {}  # rooms joined by this process: skip older events
        self._waiting: list[tuple[float, MatrixRoom, MegolmEvent]] = []  # undecryptable, waiting for keys
        self._told: set[str] = set()  # rooms told once that a message could not be decrypted
        self._greet: set[str] = set()  # rooms joined, to greet once their state has arrived
        self._since: str | None = None  # the position of the last batch handled completely
        self._unfinished = False  # a reply of the batch in hand did not get through
        self.handled = 0
        self.busy_s = 0.0
        # The counsellors' room (bot/handover): its id or alias as configured, its id once joined.
        self.counsellors_room, self.cases = counsellors_room, cases
        self._counsellors: str | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        private_dir(self.key_dir)  # the e2e keys: only for the bot's user
        device_id = await self._stored_device()
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, max_limit_exceeded=0,
                                   max_timeouts=0, request_timeout=60)
        # The device id given here is the one login() asks for (matrix-nio 0.26 takes it from the client).
        client = AsyncClient(settings.homeserver, settings.user_id, device_id=device_id,
                             store_path=str(self.key_dir), config=config)
        if settings.token:
            client.access_token = settings.token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse) or not who.device_id:
                raise RuntimeError(f"matrix: the access token is not accepted ({who})")
            if device_id and who.device_id != device_id:
                log.warning("matrix: the access token belongs to device %s, not %s: that device's keys start afresh",
                            who.device_id, device_id)
            device_id = who.device_id
            client.restore_login(settings.user_id, device_id, settings.token)
        else:
            response = await client.login(settings.password, device_name="Bildungslotse")
            if not isinstance(response, LoginResponse):
                raise RuntimeError(f"matrix: login failed ({response})")
            device_id = response.device_id
        self._keep_device(device_id)
        self.client = client
        if client.should_upload_keys:
            await client.keys_upload()
        if self.counsellors_room and self.cases is not None:
            await self._join_counsellors()
        self._since = await self._position()
        if self._since is None:
            # First start: remember where the rooms are now, answer nothing from before.
            first = await self._sync_once(timeout=0, since=None, history=False)
            if first is not None:
                await self.store.set_sync("matrix.next_batch", first.next_batch)
                self._since = first.next_batch
        else:
            # A restart: learn the rooms' state (no timeline; the position stays where it is), so
            # that a message to a room without new events (a counsellor's reply relayed to a
            # newcomer, news) can be sent at once: nio sends only to rooms it knows.
            await self._sync_once(timeout=0, since=self._since, history=False, full_state=True)
        log.info("matrix: logged in as %s (device %s)", settings.user_id, device_id)

    async def _join_counsellors(self) -> None:
        """Join the counsellors' room with the bot's account (an invite is needed for a private room)."""
        assert self.client is not None and self.counsellors_room
        room = self.counsellors_room
        if room.startswith("#"):
            resolved = await self.client.room_resolve_alias(room)
            if not isinstance(resolved, RoomResolveAliasResponse):
                raise RuntimeError(f"matrix: the counsellors' room {room} is unknown ({resolved})")
            room = resolved.room_id
        joined = await self.client.join(room)
        if not hasattr(joined, "room_id"):
            raise RuntimeError(f"matrix: cannot join the counsellors' room {room} ({joined}); invite the bot there")
        self._counsellors = room
        log.info("matrix: in the counsellors' room %s", room)

    async def _stored_device(self) -> str | None:
        """The device id kept next to its keys; earlier versions kept it in the store."""
        path = self.key_dir / DEVICE_FILE
        if path.exists():
            return path.read_text(encoding="utf-8").strip() or None
        with contextlib.suppress(StoreError):
            legacy = await self.store.get_sync("matrix.device_id")
            if legacy and any(self.key_dir.glob(f"*_{legacy}.db")):  # only with its keys
                return legacy
        return None

    def _keep_device(self, device_id: str) -> None:
        path = self.key_dir / DEVICE_FILE
        temporary = path.with_name(DEVICE_FILE + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(device_id)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    async def _position(self) -> str | None:
        """The stored sync position; a database that does not answer yet is waited for (without it
        the bot could not tell a first start, whose history it must skip, from a restart)."""
        delay = 1.0
        while True:
            try:
                return await self.store.get_sync("matrix.next_batch")
            except StoreError as exc:
                log.warning("matrix: %s; asking again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self) -> None:
        if self.client:
            await self.client.close()

    async def _sync_once(self, timeout: int, since: str | None, history: bool = True,
                         full_state: bool = False) -> SyncResponse | None:
        assert self.client is not None
        sync_filter = SYNC_FILTER if history else {**SYNC_FILTER, "room": {"timeline": {"limit": 0}}}
        response = await self.client.sync(timeout=timeout, sync_filter=sync_filter, since=since,
                                          full_state=full_state or since is None)
        if isinstance(response, SyncResponse):
            for room_id in response.rooms.invite:
                await self._accept(room_id)
            return response
        return None

    async def run(self) -> None:
        """Sync until stop(): handle each batch fully, then store its position."""
        assert self.client is not None
        backoff = 1.0
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                since = self._since
                sync = asyncio.create_task(self.client.sync(timeout=30000, sync_filter=SYNC_FILTER, since=since))
                done, _ = await asyncio.wait({sync, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if sync not in done:
                    sync.cancel()
                    break
                try:
                    response = sync.result()
                except Exception as exc:  # noqa: BLE001 - network trouble: back off and try again
                    response = exc
                if not isinstance(response, SyncResponse):
                    delay = _retry_after(response) or backoff
                    log.warning("matrix: sync failed (%s); retrying in %.1f s", response, delay)
                    await asyncio.sleep(delay)
                    backoff = min(backoff * 2, 30.0)
                    continue
                self._unfinished = False
                await self._handle(response, since)
                await self._keys()
                if self._unfinished:  # handled again from the same position; answered events are skipped
                    log.warning("matrix: replies did not get through; the batch is handled again in %.0f s", backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 1.0
                await self.store.set_sync("matrix.next_batch", response.next_batch)  # durable, with the effects
                self._since = response.next_batch
        finally:
            stopping.cancel()

    async def _keys(self) -> None:
        assert self.client is not None
        try:
            await exchange_keys(self.client)
        except Exception as exc:  # noqa: BLE001 - key traffic is retried after the next sync
            log.warning("matrix: key exchange failed (%s)", exc)

    # -- events ------------------------------------------------------------------------------
    async def _accept(self, room_id: str) -> None:
        assert self.client is not None
        room = self.client.invited_rooms.get(room_id)
        inviter = _inviter(room) if room else None
        server = inviter.split(":", 1)[1] if inviter and ":" in inviter else ""
        if self.settings.allowed_servers and server not in self.settings.allowed_servers:
            log.info("matrix: invite from %s not accepted (not an allowed homeserver)", server or "unknown")
            return
        self._joined_at[room_id] = int(time.time() * 1000)
        joined = await self.client.join(room_id)
        if hasattr(joined, "room_id"):
            self._greet.add(room_id)  # once the room's state arrives with the next sync

    async def _handle(self, response: SyncResponse, since: str | None) -> None:
        for room_id in response.rooms.invite:
            await self._accept(room_id)
        per_room = []
        for room_id, info in response.rooms.join.items():
            room = self.client.rooms.get(room_id) if self.client else None
            if room is None:
                continue
            events = list(info.timeline.events)
            # A limited timeline left messages out; not so for a room that arrives for the first
            # time after our join: what is older there is history from before the bot was in.
            if info.timeline.limited and since and room_id not in self._greet:
                events = await self._gap(room_id, info.timeline.prev_batch, since) + events
            per_room.append(self._room(room, events))
        await asyncio.gather(*per_room)
        await self._retry_undecryptable()

    async def _gap(self, room_id: str, prev_batch: str, since: str) -> list:
        """A limited timeline left events out: fetch them back to the previous sync."""
        assert self.client is not None
        fetched, start = [], prev_batch
        for _ in range(20):
            page = await self.client.room_messages(room_id, start=start, end=since, direction=MessageDirection.back, limit=100)
            if not isinstance(page, RoomMessagesResponse) or not page.chunk:
                break
            fetched.extend(page.chunk)
            if not page.end or page.end == start:
                break
            start = page.end
        fetched.reverse()
        for index, event in enumerate(fetched):
            if isinstance(event, MegolmEvent):
                event.room_id = event.room_id or room_id  # /messages leaves it out; decryption needs it
                try:
                    decrypted = self.client.decrypt_event(event)
                except EncryptionError:
                    continue  # no key (yet): handled as undecryptable, like one from a sync
                fetched[index] = decrypted if not isinstance(decrypted, Exception) else event
        return fetched

    async def _room(self, room: MatrixRoom, events: list) -> None:
        if room.room_id == self._counsellors:
            self._greet.discard(room.room_id)  # no greeting for the counsellors
        if room.room_id in self._greet:
            self._greet.discard(room.room_id)
            await self._guarded(self._greeting(room))
        joined_at = self._joined_at.get(room.room_id, 0)
        ids = [e.event_id for e in events if isinstance(e, RoomMessageText | MegolmEvent)]
        answered = await self.store.answered("matrix", ids) if ids else set()
        for event in events:
            if getattr(event, "sender", None) == self.settings.user_id:
                continue
            if getattr(event, "server_timestamp", 0) < joined_at:
                continue  # history from before the bot joined
            if getattr(event, "event_id", None) in answered:
                continue  # answered before a crash, or before a retry of this batch
            if isinstance(event, RoomMessageText):
                log.debug("matrix: message %s", event.event_id)
                await self._guarded(self._answer(room, event.event_id, event.sender, event.body, event.source))
            elif isinstance(event, MegolmEvent):
                await self._guarded(self._request_key(room, event))

    async def _answer(self, room: MatrixRoom, event_id: str, sender: str, body: str, source: dict) -> None:
        """Answer a message; once the reply got through, remember the event as answered, durably."""
        if room.room_id == self._counsellors:
            try:
                await self._from_counsellor(room, event_id, body, source)
            except (SQLAlchemyError, OSError) as exc:  # the batch is handled again: no reply is lost
                raise SendFailed(f"a counsellor's message is not stored yet ({type(exc).__name__})") from exc
            self.store.mark_answered("matrix", event_id)
            await self.store.durable()
            return
        if await self._message(room, sender, body, source):
            self.store.mark_answered("matrix", event_id)
            await self.store.durable()

    async def _guarded(self, work) -> None:
        """One failing message must not stop the others: log it, like PTB's error handler. A reply
        that did not get through leaves the batch unfinished, to be handled again."""
        try:
            await work
        except SendFailed as exc:
            self._unfinished = True
            log.warning("matrix: %s", exc)
        except PermanentSendError as exc:
            log.warning("matrix: a reply cannot be delivered (%s); given up", exc)
        except Exception as exc:  # noqa: BLE001
            log.error("matrix: handling an event failed: %s", exc, exc_info=exc)

    async def _greeting(self, room: MatrixRoom) -> None:
        reply = await self.service.handle(room.room_id, Incoming(user="", text="/start"), address=room.room_id)
        await self.send(room.room_id, reply, remember_for=None)

    async def _request_key(self, room: MatrixRoom, event: MegolmEvent) -> None:
        assert self.client is not None
        try:
            await self.client.request_room_key(event)
        except Exception as exc:  # noqa: BLE001 - asked already, or the sender's device is gone
            log.debug("matrix: key request not sent (%s)", exc)
        self._waiting.append((time.monotonic(), room, event))

    async def _retry_undecryptable(self) -> None:
        assert self.client is not None
        still = []
        for since, room, event in self._waiting:
            event.room_id = event.room_id or room.room_id  # decryption needs it; not every event carries it
            try:
                decrypted = self.client.decrypt_event(event)
            except EncryptionError:
                decrypted = None  # no key yet
            if isinstance(decrypted, RoomMessageText):
                await self._guarded(self._answer(room, event.event_id, decrypted.sender, decrypted.body,
                                                 decrypted.source))
            elif time.monotonic() - since < KEY_WAIT_S:
                still.append((since, room, event))
            elif room.room_id not in self._told:
                self._told.add(room.room_id)
                await self._notice(room.room_id, notices.undecryptable(self.service.engine.default_language))
        self._waiting = still

    async def _message(self, room: MatrixRoom, sender: str, body: str, source: dict) -> bool:
        """Answer one message if it is meant for the bot; whether a reply was sent."""
        text = body.strip()
        prefix = self.settings.command_prefix
        direct = room.member_count <= 2
        mentioned = self._mentions_me(room, text, source)
        if text.lower().startswith(prefix.lower()):
            words = text[len(prefix):].split()
            text = "/" + " ".join(words) if words and words[0].lower() in COMMANDS else " ".join(words) or "/help"
        elif not direct and not mentioned:
            return False
        elif mentioned:
            text = self._without_mention(room, text)
        key = (room.room_id, sender)
        button = choice(text, self._choices.get(key, {}))
        if button is not None:
            incoming = Incoming(user="", payload=button.payload)
        else:
            if text.startswith("/") and text[1:].split(" ")[0] in ADMIN_COMMANDS:
                await self._admin(room, sender, text[1:].split(" ")[0])
                return True
            incoming = Incoming(user="", text=text)
        started = time.perf_counter()
        reply = await self.service.handle(sender, incoming, address=room.room_id)
        self.busy_s += time.perf_counter() - started  # the bot's own work, without the network
        await self.send(room.room_id, reply, remember_for=key)
        self.handled += 1
        return True

    # -- the counsellors' room (bot/handover) ---------------------------------------------------
    async def _from_counsellor(self, room: MatrixRoom, event_id: str, body: str, source: dict) -> None:
        """A thread reply goes to the case's newcomer (stored first, relayed by the worker);
        !close and !cases are for the desk; anything else is the counsellors' own talk."""
        assert self.cases is not None
        relation = (source.get("content") or {}).get("m.relates_to") or {}
        thread = relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
        text = "\n".join(line for line in body.splitlines() if not line.startswith("> ")).strip()
        command = text.split()[0].lower() if text.split() else ""
        if command == "!cases":
            await self._list_cases(room.room_id, thread)
            return
        if thread is None or not text:
            return
        case = await self.cases.by_thread(thread)
        if case is None:
            return  # a thread of the counsellors' own
        if case.state == "closed":
            await self.post_in_thread(thread, f"Fall {case.number} ist geschlossen: diese Nachricht wurde nicht weitergeleitet.")
            return
        if command == "!close":
            await self.cases.close(case, "counsellor")
            await self.post_in_thread(thread, f"Fall {case.number} ist geschlossen; die Person wird benachrichtigt.")
            return
        await self.cases.relay_from_counsellor(case, text, event_id)

    async def _list_cases(self, room_id: str, thread: str | None) -> None:
        assert self.cases is not None
        open_cases = await self.cases.open_cases()
        lines = [f"Offene Fälle: {len(open_cases)}"] + [
            f"• {c.number} · {c.language} · {c.topic or '–'} · seit {age(c.created_at)}"
            + ("" if c.thread_id else " · noch nicht im Raum") for c in open_cases]
        if thread:
            await self.post_in_thread(thread, "\n".join(lines))
        else:
            await self._notice(room_id, "\n".join(lines))

    async def open_thread(self, text: str) -> str:
        """A case's first message in the counsellors' room; its event id is the thread's root."""
        assert self._counsellors is not None
        return await self._send(self._counsellors, {"msgtype": "m.text", "body": text})

    async def post_in_thread(self, thread_id: str, text: str) -> None:
        assert self._counsellors is not None
        await self._send(self._counsellors, {"msgtype": "m.text", "body": text, "m.relates_to": {
            "rel_type": "m.thread", "event_id": thread_id, "is_falling_back": True,
            "m.in_reply_to": {"event_id": thread_id}}})

    async def _admin(self, room: MatrixRoom, sender: str, command: str) -> None:
        room_id = room.room_id
        # Only in a direct chat: in a room with others, stats would show the unanswered questions to all.
        if self.admin is None or sender not in self.settings.admins or room.member_count > 2:
            reply = await self.service.handle(sender, Incoming(user="", text="/help"), address=room_id)
            await self.send(room_id, reply, remember_for=(room_id, sender))
            return
        await self._notice(room_id, await self.admin(command))

    def _mentions_me(self, room: MatrixRoom, text: str, source: dict) -> bool:
        me = self.settings.user_id or ""
        mentions = (source.get("content") or {}).get("m.mentions") or {}
        if me in (mentions.get("user_ids") or []):
            return True
        names = [me, me.split(":")[0].lstrip("@")]
        display = room.user_name(me) if me in room.users else None
        if display:
            names.append(display)
        return any(name and name.lower() in text.lower() for name in names)

    def _without_mention(self, room: MatrixRoom, text: str) -> str:
        me = self.settings.user_id or ""
        for name in filter(None, [me, room.user_name(me) if me in room.users else None, me.split(":")[0].lstrip("@")]):
            text = re.sub(re.escape(name) + r":?", " ", text, flags=re.IGNORECASE)
        return text.strip()

    # -- sending -----------------------------------------------------------------------------
    def _commands_here(self, text: str) -> str:
        """Our replies name commands as /topics; in Matrix they are typed as "!lotse topics"."""
        prefix = self.settings.command_prefix
        return re.sub(r"(?<![\w/])/(" + "|".join(COMMANDS) + r")\b", lambda m: f"{prefix} {m.group(1)}", text)

    async def send(self, room_id: str, reply: Reply, remember_for: tuple[str, str] | None) -> None:
        numbered = number_choices(reply, skip=(SHARE,))  # no share links here; the card can be forwarded
        hint = notices.choose_by_number(reply.language)
        for message, choices in zip(reply.messages, numbered, strict=True):
            plain = render_plain(list(message.lines), reply.rtl)
            formatted = render_html(list(message.lines), reply.rtl).replace("\n", "<br>\n")
            if choices:
                lines = [f"{number}. {label}" for number, label, _ in choices]
                plain += "\n\n" + hint + "\n" + "\n".join(lines)
                formatted += "<br>\n<br>\n<i>" + html.escape(hint) + "</i><br>\n" + "<br>\n".join(html.escape(n) for n in lines)
            content = {"msgtype": "m.text", "body": self._commands_here(plain), "format": "org.matrix.custom.html",
                       "formatted_body": self._commands_here(formatted)}
            await self._send(room_id, content)
            if message.location:
                where = message.location
                await self._send(room_id, {"msgtype": "m.location", "body": f"{where.title}, {where.address}",
                                           "geo_uri": f"geo:{where.latitude},{where.longitude}"})
        if remember_for:
            self._choices[remember_for] = by_number(numbered)
            self._choices.move_to_end(remember_for)
            while len(self._choices) > 10_000:
                self._choices.popitem(last=False)

    async def _notice(self, room_id: str, text: str) -> None:
        await self._send(room_id, {"msgtype": "m.notice", "body": text})

    async def _send(self, room_id: str, content: dict) -> str:
        """Send one event: retried with backoff through 429, 5xx, timeouts and dropped connections;
        PermanentSendError when the homeserver refuses it (4xx: not in the room, say), SendFailed
        when it still did not get through."""
        assert self.client is not None
        delay = 0.5
        for attempt in range(SEND_ATTEMPTS):
            try:
                response = await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
            except (aiohttp.ClientError, OSError) as exc:  # a dropped connection, a timeout (nio re-raises those)
                problem, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if not isinstance(response, RoomSendError):
                    return response.event_id
                wait = _retry_after(response)
                status = getattr(getattr(response, "transport_response", None), "status", None)
                if wait is None and status is not None and 400 <= status < 500:
                    raise PermanentSendError(f"{room_id}: {response}")
                problem = str(response)
            if attempt == SEND_ATTEMPTS - 1:
                raise SendFailed(f"could not send to {room_id} ({problem})")
            await asyncio.sleep(wait or delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def send_news(self, address: str, reply: Reply) -> None:
        await self.send(address, reply, remember_for=None)  # PermanentSendError: the broadcaster skips it


async def exchange_keys(client: AsyncClient) -> None:
    """The end-to-end key traffic nio's sync_forever does after each sync (we run our own loop)."""
    await client.send_to_device_messages()
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())


def _retry_after(response) -> float | None:
    """Seconds to wait for a rate-limited request (429 M_LIMIT_EXCEEDED), else None."""
    if getattr(response, "status_code", None) == "M_LIMIT_EXCEEDED":
        return max(0.1, (getattr(response, "retry_after_ms", None) or 1000) / 1000)
    return None


def _inviter(room: MatrixRoom) -> str | None:
    return getattr(room, "inviter", None)  # nio's MatrixInvitedRoom keeps who invited us

