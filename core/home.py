"""A device's state folder (``KEYSTEAD_HOME``) and its local, non-secret cache.

Layout::

    keystore.json   encrypted keys and epoch keys (see keystore.py)
    device.json     server URL, account, device id and name (public facts)
    chain.json      the last verified account chain, as signed entries
    cache.sqlite    sealed items per collection, sync cursors, writes queued offline

Nothing outside the keystore is secret: items in the cache stay sealed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._homedir import home_dir
from .chain import SignedEntry
from .errors import FormatError, RollbackDetected, StorageError
from .items import SealedItem
from .keystore import atomic_write

__all__ = ["Home", "LocalCache"]


@dataclass(frozen=True)
class Home:
    """Where one device keeps its state. Several homes on one machine are several devices."""

    path: Path

    @classmethod
    def from_env(cls, explicit: str | os.PathLike[str] | None = None) -> Home:
        return cls(Path(home_dir(explicit)))

    @property
    def keystore(self) -> Path:
        return self.path / "keystore.json"

    @property
    def exists(self) -> bool:
        return self.keystore.exists()

    def read_device(self) -> dict[str, Any]:
        try:
            obj = json.loads((self.path / "device.json").read_text())
        except FileNotFoundError:
            raise StorageError(
                f"no device in {self.path}: run 'keystead account create' or "
                "'keystead device join' first"
            ) from None
        except ValueError as e:
            raise FormatError(f"{self.path / 'device.json'} is corrupt") from e
        if obj.get("v") != 1:
            raise FormatError("unsupported device.json version")
        return dict(obj)

    def write_device(self, info: dict[str, Any]) -> None:
        atomic_write(self.path / "device.json", json.dumps({"v": 1, **info}, indent=1).encode())

    def read_chain(self) -> list[SignedEntry]:
        try:
            raw = json.loads((self.path / "chain.json").read_text())
        except FileNotFoundError:
            return []
        except ValueError as e:
            raise FormatError("cached chain is corrupt") from e
        return [SignedEntry.from_json(e) for e in raw]

    def write_chain(self, entries: Iterable[SignedEntry]) -> None:
        atomic_write(
            self.path / "chain.json",
            json.dumps([e.to_json() for e in entries]).encode(),
            mode=0o644,
            durable=False,
        )

    def cache(self) -> LocalCache:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return LocalCache(self.path / "cache.sqlite")


_CACHE_VERSION = 4
_COLUMNS = "id, version, epoch, ciphertext, deleted, seq, writer, sig, proof"


def _item(r: tuple[Any, ...]) -> SealedItem:
    return SealedItem(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8])


def _row(collection: str, i: SealedItem) -> tuple[Any, ...]:
    return (
        collection,
        i.id,
        i.version,
        i.epoch,
        i.ciphertext,
        int(i.deleted),
        i.seq,
        i.writer,
        i.signature,
        i.proof,
    )


class LocalCache:
    """Sealed items and sync state, in SQLite so 100,000 items stay cheap to update."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != _CACHE_VERSION:
            # A cache: one of another version (protocol 1) is dropped and fetched again.
            self._db.executescript("""
                DROP TABLE IF EXISTS items; DROP TABLE IF EXISTS cursors;
                DROP TABLE IF EXISTS pending; DROP TABLE IF EXISTS unreadable;""")
        self._db.executescript(f"""
            CREATE TABLE IF NOT EXISTS items (collection TEXT, id TEXT, version INT, epoch INT,
                ciphertext BLOB, deleted INT, seq INT, writer TEXT, sig BLOB, proof BLOB,
                PRIMARY KEY (collection, id));
            CREATE TABLE IF NOT EXISTS cursors (collection TEXT PRIMARY KEY, seq INT);
            CREATE TABLE IF NOT EXISTS unreadable (collection TEXT, id TEXT, writer TEXT,
                reason TEXT, PRIMARY KEY (collection, id));
            CREATE TABLE IF NOT EXISTS pending (collection TEXT, id TEXT, version INT, epoch INT,
                ciphertext BLOB, deleted INT, seq INT, writer TEXT, sig BLOB, proof BLOB,
                PRIMARY KEY (collection, id));
            PRAGMA user_version = {_CACHE_VERSION};
        """)

    def close(self) -> None:
        self._db.close()

    def cursor(self, collection: str) -> int:
        row = self._db.execute(
            "SELECT seq FROM cursors WHERE collection=?", (collection,)
        ).fetchone()
        return int(row[0]) if row else 0

    def store(
        self,
        collection: str,
        items: Iterable[SealedItem],
        cursor: int,
        unreadable: Mapping[str, str] | None = None,
    ) -> None:
        """Store fetched items and advance the cursor, atomically; ``unreadable`` names the
        ones this device could not verify or open, with why (checked once, at fetch).

        An item older than the cached one is a service replaying history: refused."""
        items = list(items)
        ids = [i.id for i in items]
        known: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(
                self._db.execute(
                    f"SELECT id, version FROM items WHERE collection=? AND id IN "
                    f"({','.join('?' * len(chunk))})",
                    (collection, *chunk),
                ).fetchall()
            )
        for i in items:
            if known.get(i.id, 0) > i.version:
                raise RollbackDetected(
                    f"the service sent version {i.version} of {collection}/{i.id}, "
                    f"older than version {known[i.id]} seen before"
                )
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?,?,?)",
                [_row(collection, i) for i in items],
            )
            self._db.executemany(
                "DELETE FROM unreadable WHERE collection=? AND id=?",
                [(collection, i.id) for i in items],
            )
            bad = unreadable or {}
            self._db.executemany(
                "INSERT INTO unreadable VALUES (?,?,?,?)",
                [(collection, i.id, i.writer, bad[i.id]) for i in items if i.id in bad],
            )
            self._db.execute("INSERT OR REPLACE INTO cursors VALUES (?,?)", (collection, cursor))

    def items(self, collection: str, *, include_deleted: bool = False) -> Iterator[SealedItem]:
        q = f"SELECT {_COLUMNS} FROM items WHERE collection=?"
        if not include_deleted:
            q += " AND deleted=0"
        for r in self._db.execute(q + " ORDER BY id", (collection,)):
            yield _item(r)

    def item(self, collection: str, item_id: str) -> SealedItem | None:
        r = self._db.execute(
            f"SELECT {_COLUMNS} FROM items WHERE collection=? AND id=?", (collection, item_id)
        ).fetchone()
        return None if r is None else _item(r)

    def unreadable(self, collection: str) -> dict[str, tuple[str, str]]:
        """Items that failed their check at fetch: id -> (writer, reason)."""
        return {
            r[0]: (r[1], r[2])
            for r in self._db.execute(
                "SELECT id, writer, reason FROM unreadable WHERE collection=?", (collection,)
            )
        }

    def queue(self, collection: str, item: SealedItem) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?)", _row(collection, item)
        )

    def pending(self, collection: str) -> list[SealedItem]:
        return [
            _item(r)
            for r in self._db.execute(
                f"SELECT {_COLUMNS} FROM pending WHERE collection=? ORDER BY id", (collection,)
            )
        ]

    def unqueue(self, collection: str, item_id: str) -> None:
        self._db.execute("DELETE FROM pending WHERE collection=? AND id=?", (collection, item_id))

    def _tx(self) -> _Tx:
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")
