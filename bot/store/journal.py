"""The write-behind queue's journal: every queued change appended to a file in the data folder.

A change the store has accepted is *durable* once it is in the journal (after an fsync) or in the
database. After a crash, or a stop while the database did not answer, the next start replays the
journal; the database remembers, in the same transaction as the changes, the sequence number up to
which this journal is written (`sync_state` row `journal:<id>`), so a change is written exactly once.
The file holds what the database would hold (pseudonymous keys, encrypted addresses, scrubbed
questions) and only until it is written: it is emptied once nothing is waiting.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
COMPACT_BYTES = 1 << 20  # rewrite the file when nothing waits and it grew beyond this


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    kind: str
    values: dict[str, Any]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$d" in obj:
            return date.fromisoformat(obj["$d"])
        if "$b" in obj:
            return base64.b64decode(obj["$b"])
    return obj


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = uuid.uuid4().hex[:16]  # names this journal's marker in the database
        self.next_seq = 1
        self.ok = True  # False after a write failed: durability then waits for the database
        self._fd = -1
        self._lock_fd = -1
        self._written = 0  # bytes appended so far
        self._synced = 0
        self._lock = asyncio.Lock()

    @property
    def marker(self) -> str:
        return f"journal:{self.id}"

    # -- opening and replay --------------------------------------------------------------------
    def open(self) -> list[Entry]:
        """Read what a previous run left (its changes not known to be written), then keep appending.
        One process at a time: another bot on the same data folder gets an OSError."""
        self._lock_fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise OSError(f"{self.path} is in use by another bot process on the same data folder") from None
        entries: list[Entry] = []
        if self.path.exists():
            entries = self._read()
        self._rewrite(entries)
        return entries

    def _read(self) -> list[Entry]:
        entries = []
        lines = self.path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line, object_hook=_decode)
            except ValueError:
                if number < len(lines) - 1:  # only the last line can be torn by a crash
                    log.error("store: line %d of the journal %s is unreadable; skipped", number, self.path)
                continue
            if "journal" in record:
                self.id, self.next_seq = record["journal"], max(self.next_seq, int(record["next"]))
            else:
                entries.append(Entry(int(record["s"]), record["k"], record["v"]))
                self.next_seq = max(self.next_seq, int(record["s"]) + 1)
        return entries

    def _rewrite(self, entries: list[Entry]) -> None:
        """Replace the file atomically by a header and `entries` (compaction, or a new file)."""
        temporary = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            data = [self._line({"journal": self.id, "next": self.next_seq})]
            data += [self._line({"s": e.seq, "k": e.kind, "v": e.values}) for e in entries]
            os.write(fd, b"".join(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._written = self._synced = os.fstat(self._fd).st_size

    @staticmethod
    def _line(record: dict[str, Any]) -> bytes:
        return json.dumps(record, default=_encode, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    # -- appending -----------------------------------------------------------------------------
    def append(self, kind: str, values: dict[str, Any]) -> int | None:
        """Write one change (not yet synced); its sequence number, or None when the journal failed."""
        if not self.ok:
            return None
        seq = self.next_seq
        try:
            line = self._line({"s": seq, "k": kind, "v": values})
            os.write(self._fd, line)
        except (OSError, TypeError, ValueError) as exc:
            self._fail(exc)
            return None
        self.next_seq += 1
        self._written += len(line)
        return seq

    async def sync(self) -> bool:
        """Make everything appended so far durable (one fsync for every caller waiting)."""
        if not self.ok:
            return False
        target = self._written
        async with self._lock:
            if self._synced >= target:
                return True
            upto = self._written
            try:
                if os.fstat(self._fd).st_nlink == 0:
                    raise FileNotFoundError(f"{self.path} was deleted")
                await asyncio.to_thread(os.fsync, self._fd)
            except OSError as exc:
                self._fail(exc)
                return False
            self._synced = upto
        return True

    def _fail(self, exc: BaseException) -> None:
        if self.ok:
            log.error("store: cannot write the journal %s (%s); changes are durable only once the database "
                      "has them", self.path, exc)
        self.ok = False

    def compact(self, waiting: list[Entry], force: bool = False) -> None:
        """Start the file afresh with what still waits (nothing, usually), when it has grown or `force`."""
        if not self.ok or (not force and self._written < COMPACT_BYTES):
            return
        try:
            self._rewrite(waiting)
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1
