"""A Matrix user (matrix-nio, with encryption) who talks to the bot through Synapse."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessageNotice, RoomMessagesResponse, RoomMessageText

from bot.loopback.synapse import Synapse
from bot.transports.matrix import exchange_keys

_ids = itertools.count(1)


class Person:
    def __init__(self, synapse: Synapse, name: str, keys: Path) -> None:
        account = synapse.register(name)
        self.user_id = account["user_id"]
        keys.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(synapse.url, self.user_id, device_id=account["device_id"], store_path=str(keys),
                                  config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        self.client.restore_login(self.user_id, account["device_id"], account["access_token"])

    async def sync(self, seconds: float = 0.5) -> None:
        await self.client.sync(timeout=int(seconds * 1000), full_state=self.client.next_batch is None)
        await exchange_keys(self.client)

    async def room_with(self, *others: str, encrypted: bool = False, direct: bool = True) -> str:
        state = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}] if encrypted else []
        response = await self.client.room_create(is_direct=direct, invite=list(others), initial_state=state)
        await self.sync(0)
        return response.room_id

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)
        await self.sync(0)

    async def say(self, room_id: str, text: str, html: str | None = None, mentions: list[str] | None = None) -> None:
        content = {"msgtype": "m.text", "body": text}
        if html:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        if mentions is not None:
            content["m.mentions"] = {"user_ids": mentions}
        await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)

    async def replies(self, room_id: str, sender: str) -> list[dict]:
        """The sender's messages in the room, read back from the server's history (decrypted
        where our keys allow), oldest first: counting what the server has, not what a sync showed."""
        await self.sync(0)
        events, start = [], self.client.next_batch
        while True:
            page = await self.client.room_messages(room_id, start=start, limit=100)
            if not isinstance(page, RoomMessagesResponse) or not page.chunk:
                break
            events.extend(page.chunk)
            if not page.end or page.end == start:
                break
            start = page.end
        found = []
        for event in reversed(events):
            if getattr(event, "sender", None) != sender:
                continue
            if isinstance(event, MegolmEvent):
                decrypted = self.client.decrypt_event(event)
                source = dict(getattr(decrypted, "source", event.source))
                source["was_encrypted"] = True
                found.append(source)
            elif isinstance(event, RoomMessageText | RoomMessageNotice):
                source = dict(event.source)
                source["was_encrypted"] = bool(getattr(event, "decrypted", False))
                found.append(source)
        return found

    async def wait_replies(self, room_id: str, sender: str, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(found := await self.replies(room_id, sender)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} replies from the bot")
            await self.sync(0.3)
        return found

    async def quiet_for(self, room_id: str, sender: str, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.sync(0.2)
        return len(await self.replies(room_id, sender))

    async def close(self) -> None:
        await self.client.close()


def body(source: dict) -> str:
    return (source.get("content") or {}).get("body", "")


def unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}x{int(time.time() * 1000) % 100000}"


async def eventually(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)
