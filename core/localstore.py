"""A local SQLite store for an adapter: schema version, migrations, several processes at once.

Several commands run on one device at the same time (the browser host and the
CLI, two terminals, an agent), so every adapter's local file is opened the same
way: WAL journal (readers never block the writer), a busy timeout (a writer waits
for another instead of failing), ``BEGIN IMMEDIATE`` transactions (read-then-write
sequences are atomic across processes), and ``PRAGMA user_version`` as the schema
version. Migrations run once, in one transaction, whichever process comes first;
a file written by a newer version is refused, never guessed at.

    store = LocalStore(home / "messaging.sqlite", MIGRATIONS)
    with store.transaction() as db:
        db.execute("INSERT ...")
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StorageError, UnsupportedVersion

__all__ = ["LocalStore", "Migration"]

Migration = str | Callable[[sqlite3.Connection], None]
"""One step: an SQL script, or a function given the connection (inside the transaction)."""

BUSY_TIMEOUT = 30.0


class LocalStore:
    """One SQLite file; ``migrations[i]`` brings the schema from version i to i + 1."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        migrations: Sequence[Migration],
        *,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if not migrations:
            raise ValueError("a local store needs at least one migration (its schema)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():  # created 0600: it may hold sealed secrets and metadata
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._wal(busy_timeout)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open {self.path}: {e}") from e
        self.version = self._migrate(migrations)

    def _wal(self, busy_timeout: float) -> None:
        """Switch to WAL. While another connection is switching the same new file, SQLite
        answers "database is locked" at once, without waiting on the busy handler: retry
        until the busy timeout is spent."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, migrations: Sequence[Migration]) -> int:
        with self.transaction() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > len(migrations):
                raise UnsupportedVersion(
                    f"{self.path} has schema version {current}; this Keystead knows up to "
                    f"{len(migrations)} (it was written by a newer version)"
                )
            for step in migrations[current:]:
                if callable(step):
                    step(db)
                else:
                    for statement in _statements(step):
                        db.execute(statement)
            if current != len(migrations):
                db.execute(f"PRAGMA user_version={len(migrations)}")
            return len(migrations)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception): the write lock
        is taken at the start, so what is read inside is still true when written."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StorageError(f"{self.path}: {e}") from e
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self._db.execute("ROLLBACK")
            raise StorageError(f"{self.path}: {e}") from e

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement on its own (autocommit): reads, or single writes."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise StorageError(f"{self.path}: {e}") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _statements(script: str) -> list[str]:
    """Split a migration script at ';' line ends (``executescript`` would COMMIT our
    transaction first). Migration scripts are ours: no ';' inside string literals."""
    return [s.strip() for s in script.split(";") if s.strip()]
