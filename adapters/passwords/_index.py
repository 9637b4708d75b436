"""A local lookup index, so ``get`` opens only the entries that can match.

Without it every ``get`` would decrypt and parse the whole vault (10,000
entries: a few hundred milliseconds). The index maps keyed hashes of an
entry's URL forms to item ids:

    u:<normalized URL>   exact tier
    o:<origin>           origin tier
    d:<host suffix>      domain tier (every suffix of two labels or more, so
                         indexing needs no Public Suffix List; a lookup asks
                         for the page's registrable domain only)
    n:<casefolded name>  ``show NAME``, for items of every type

Tokens are HMAC-SHA256 under a random key kept in the device keystore, so the
file (``passwords-index.sqlite`` in the home) reveals no URL, only which
entries share one. It is a cache: it is rebuilt from the collection whenever
it is missing, corrupt or behind the local item cache. Candidates it returns
are always checked again by :func:`find_matches`.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from keystead.core.errors import StorageError
from keystead.core.localstore import LocalStore

from ._entry import Entry
from ._match import _split

__all__ = ["MIGRATIONS", "Index", "name_token", "url_tokens"]

MIGRATIONS = [
    # 1: the first versioned schema. Files from before had no version and allowed a token
    # twice; the index is a cache, so their tables are dropped and rebuilt.
    """
    DROP TABLE IF EXISTS tokens;
    DROP TABLE IF EXISTS meta;
    DROP TABLE IF EXISTS versions;
    CREATE TABLE tokens (token BLOB NOT NULL, id TEXT NOT NULL, PRIMARY KEY (token, id))
        WITHOUT ROWID;
    CREATE INDEX tokens_id ON tokens(id);
    CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    CREATE TABLE versions (id TEXT PRIMARY KEY, version INTEGER NOT NULL);
    """,
]
_CHECK = b"keystead/v2/passwords/index-key-check"  # v2: name tokens; a v1 index is rebuilt


def url_tokens(url: str) -> set[str]:
    """Every token under which an entry with this URL is found."""
    split = _split(url)
    if split is None:
        return set()
    origin, normalized = split
    tokens = {"u:" + normalized, "o:" + str(origin)}
    host = origin.host
    if ":" not in host and not host.replace(".", "").isdigit():
        labels = host.split(".")
        tokens.update("d:" + ".".join(labels[i:]) for i in range(len(labels) - 1))
    return tokens


def name_token(name: str) -> str:
    """The token under which an entry of this name (any case) is found."""
    return "n:" + name.casefold()


def entry_tokens(entry: Entry) -> set[str]:
    out: set[str] = {name_token(entry.name)} if entry.name else set()
    for url in (entry.url, *entry.other_urls):
        out |= url_tokens(url)
    return out


class Index:
    """The token table of one device's vault, stamped with the item-cache cursor it reflects.

    A :class:`~keystead.core.localstore.LocalStore`: several commands of one device use it
    at once (twelve ``passwords add`` runs, the browser host and the CLI). Every change is
    one ``BEGIN IMMEDIATE`` transaction, and :meth:`locked` lets a caller read the item
    cache and write what it read under that same lock, so a rebuild never drops the rows
    another command added between its read and its write."""

    def __init__(self, path: Path, key: bytes) -> None:
        self._key = key
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._conn: sqlite3.Connection | None = None
        try:
            self._store = LocalStore(path, MIGRATIONS)
        except (StorageError, sqlite3.DatabaseError):  # a corrupt cache file: start again
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._store = LocalStore(path, MIGRATIONS)
        check = hmac.new(key, _CHECK, hashlib.sha256).hexdigest()
        with self.locked() as db:
            if self._meta("check") != check:  # new key (or new file): nothing in it is usable
                db.execute("DELETE FROM tokens")
                db.execute("DELETE FROM versions")
                db.execute("DELETE FROM meta")
                self._set_meta("check", check)

    def close(self) -> None:
        self._store.close()

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (re-entrant: inner uses join the outer one)."""
        if self._conn is not None:
            yield self._conn
            return
        with self._store.transaction() as db:
            self._conn = db
            try:
                yield db
            finally:
                self._conn = None

    def _meta(self, k: str) -> str | None:
        row = self._store.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, k: str, v: str) -> None:
        self._store.execute(
            "INSERT INTO meta VALUES (?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v)
        )

    def _hash(self, token: str) -> bytes:
        mac = self._mac.copy()  # the keyed state once, not the key schedule per token
        mac.update(token.encode())
        return mac.digest()[:16]

    @property
    def cursor(self) -> int | None:
        """The item-cache cursor this index was last brought up to; None: never built."""
        v = self._meta("cursor")
        return None if v is None else int(v)

    def versions(self, ids: Iterable[str]) -> dict[str, int]:
        """The item version each of ``ids`` was indexed at (absent: never indexed)."""
        out: dict[str, int] = {}
        batch = list(ids)
        for start in range(0, len(batch), 500):
            part = batch[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._store.execute(
                f"SELECT id, version FROM versions WHERE id IN ({marks})", part
            )
            out.update((r[0], int(r[1])) for r in rows)
        return out

    def replace(
        self,
        entries: Iterable[tuple[str, Entry | None, int]],
        cursor: int | None = None,
        *,
        full: bool = False,
        new: bool = False,
    ) -> None:
        """Re-index these (id, entry, item version) (entry None: deleted); ``full`` drops
        everything else first, ``new`` says the ids were never indexed (an import), so
        there is nothing to drop."""
        rows: list[tuple[bytes, str]] = []
        ids: list[tuple[str]] = []
        versions: list[tuple[str, int]] = []
        for item_id, entry, version in entries:
            ids.append((item_id,))
            versions.append((item_id, version))
            if entry is not None:
                rows.extend((self._hash(t), item_id) for t in entry_tokens(entry))
        with self.locked() as db:
            if full:
                db.execute("DELETE FROM tokens")
                db.execute("DELETE FROM versions")
            elif not new:
                db.executemany("DELETE FROM tokens WHERE id=?", ids)
            db.executemany("INSERT OR IGNORE INTO tokens VALUES (?,?)", rows)
            db.executemany(
                "INSERT INTO versions VALUES (?,?) "
                "ON CONFLICT(id) DO UPDATE SET version=excluded.version",
                versions,
            )
            if cursor is not None:
                self._set_meta("cursor", str(cursor))

    def candidates(self, tokens: Iterable[str]) -> list[str]:
        """Ids indexed under any of ``tokens``, without repeats."""
        hashes = [self._hash(t) for t in tokens]
        if not hashes:
            return []
        marks = ",".join("?" * len(hashes))
        rows = self._store.execute(
            f"SELECT DISTINCT id FROM tokens WHERE token IN ({marks}) ORDER BY id", hashes
        )
        return [r[0] for r in rows]
