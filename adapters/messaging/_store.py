"""This device's read messages: a SQLite file in the device home, every record sealed.

Each record is canonical JSON sealed (ChaCha20-Poly1305) under a random key
kept in the device's keystore, so what sits on disk is ciphertext plus a local
number and the spool id. Replays are refused through keyed tags of
(sender, message id) that outlive ``rm``: a message id is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from keystead.core import (
    Device,
    FormatError,
    b64d,
    b64e,
    canonical_json,
    open_sealed,
    parse_json_object,
    random_bytes,
    seal,
)
from keystead.core.capabilities import KeystoreSlot
from keystead.core.localstore import LocalStore

from . import _labels

__all__ = ["Message", "MessageStore"]


@dataclass(frozen=True)
class Message:
    """One inbox entry: a verified message, or a refused one (``text`` None, ``reason`` set)."""

    local: int
    spool: int
    id: str | None
    sender: str | None
    device: str | None
    time: int | None
    received: int
    group: str | None
    verified: bool
    text: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.local),
            "message_id": self.id,
            "from": self.sender,
            "device": self.device,
            "time": self.time,
            "received": self.received,
            "verified": self.verified,
            "text": self.text,
        }
        if self.group is not None:
            out["group"] = self.group
        if self.reason is not None:
            out["refused"] = self.reason
        return out


_FIELDS = (
    "spool",
    "id",
    "sender",
    "device",
    "time",
    "received",
    "group",
    "verified",
    "text",
    "reason",
)


MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS messages (local INTEGER PRIMARY KEY AUTOINCREMENT,
           spool INT NOT NULL, sealed BLOB NOT NULL);
       CREATE TABLE IF NOT EXISTS seen (tag TEXT PRIMARY KEY);
       CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v INT NOT NULL)""",
)
"""Schema versions of ``messaging.sqlite`` (core's LocalStore: WAL, busy timeout, versions)."""


class MessageStore:
    """The local store of one device (``messaging.sqlite`` in its home). Several commands
    may use it at once: ``add`` is exactly-once per spool entry across processes."""

    def __init__(self, device: Device) -> None:
        key = KeystoreSlot(device, "messaging").get_or_create(
            "store_key", lambda: b64e(random_bytes(32))
        )
        self._key = b64d(key, size=32, what="message store key")
        self._ad = _labels.STORE_AD + b"\x00" + device.account.encode()
        self._db = LocalStore(device.home.path / "messaging.sqlite", MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    # ---------------------------------------------------------------- replay
    def tag(self, sender: str, message_id: str) -> str:
        msg = _labels.REPLAY_TAG + b"\x00" + sender.encode() + b"\x00" + message_id.encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def seen(self, tags: Iterable[str]) -> set[str]:
        wanted = list(tags)
        out: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT tag FROM seen WHERE tag IN ({marks})"
            out.update(r[0] for r in self._db.execute(q, chunk))
        return out

    # ---------------------------------------------------------------- cursor
    def cursor(self) -> int:
        row = self._db.execute("SELECT v FROM state WHERE k='cursor'").fetchone()
        return int(row[0]) if row else 0

    # ---------------------------------------------------------------- records
    def add(self, records: list[dict[str, Any]], tags: list[str], cursor: int) -> list[Message]:
        """Store new entries, mark their tags seen and advance the cursor, atomically. Entries
        another command stored meanwhile (at or below the stored cursor) are skipped, and a
        tag another command marked meanwhile turns that entry into a refused replay."""
        out = []
        with self._db.transaction() as db:
            row = db.execute("SELECT v FROM state WHERE k='cursor'").fetchone()
            done = int(row[0]) if row else 0
            fresh = [r for r in records if r["spool"] > done]
            for rec in fresh:
                sealed = seal(self._key, canonical_json(rec), self._ad)
                cur = db.execute(
                    "INSERT INTO messages (spool, sealed) VALUES (?, ?)", (rec["spool"], sealed)
                )
                out.append(Message(local=int(cur.lastrowid or 0), **rec))
            db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(t,) for t in tags])
            db.execute("INSERT OR REPLACE INTO state VALUES ('cursor', ?)", (max(cursor, done),))
        return out

    def _open(self, local: int, sealed: bytes) -> Message:
        obj = parse_json_object(open_sealed(self._key, sealed, self._ad), what="stored message")
        if set(obj) != set(_FIELDS):
            raise FormatError("stored message: unexpected fields")
        return Message(local=local, **obj)

    def all(self) -> Iterator[Message]:
        rows = self._db.execute("SELECT local, sealed FROM messages ORDER BY local").fetchall()
        for local, sealed in rows:
            yield self._open(local, sealed)

    def get(self, local: int) -> Message | None:
        row = self._db.execute("SELECT sealed FROM messages WHERE local=?", (local,)).fetchone()
        return None if row is None else self._open(local, row[0])

    def remove(self, local: int) -> None:
        self._db.execute("DELETE FROM messages WHERE local=?", (local,))


def record(**fields: Any) -> dict[str, Any]:
    """A record to store, with every field present (None where not known)."""
    rec: dict[str, Any] = dict.fromkeys(_FIELDS)
    rec.update(fields)
    rec["verified"] = bool(rec["verified"])
    return rec
