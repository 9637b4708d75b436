"""core.localstore: schema versions, migrations, and several processes writing at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from keystead.core.errors import UnsupportedVersion
from keystead.core.localstore import LocalStore

V1 = "CREATE TABLE kv (k TEXT PRIMARY KEY, v INT NOT NULL)"
V2 = "ALTER TABLE kv ADD COLUMN note TEXT; CREATE TABLE log (x INT)"


def test_a_new_file_gets_the_newest_schema_0600(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite", [V1, V2]) as s:
        assert s.version == 2
        s.execute("INSERT INTO kv VALUES ('a', 1, 'n')")
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o777 == 0o600


def test_an_old_file_is_migrated_once_and_keeps_its_rows(tmp_path: Path) -> None:
    calls: list[int] = []

    def v3(db: sqlite3.Connection) -> None:
        calls.append(1)
        db.execute("UPDATE kv SET v = v + 100")

    with LocalStore(tmp_path / "s.sqlite", [V1]) as s:
        s.execute("INSERT INTO kv VALUES ('a', 1)")
    for _ in range(2):
        with LocalStore(tmp_path / "s.sqlite", [V1, V2, v3]) as s:
            assert s.version == 3
            assert s.execute("SELECT k, v, note FROM kv").fetchall() == [("a", 101, None)]
    assert calls == [1]


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    LocalStore(tmp_path / "s.sqlite", [V1, V2]).close()
    with pytest.raises(UnsupportedVersion):
        LocalStore(tmp_path / "s.sqlite", [V1])


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    LocalStore(tmp_path / "s.sqlite", [V1]).close()
    with pytest.raises(sqlite3.OperationalError):
        LocalStore(tmp_path / "s.sqlite", [V1, "CREATE TABLE log (x INT); SELECT nonsense()"])
    with LocalStore(tmp_path / "s.sqlite", [V1, V2]) as s:  # still at 1, so V2 applies
        assert s.version == 2


def test_a_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite", [V1]) as s:
        with pytest.raises(RuntimeError), s.transaction() as db:
            db.execute("INSERT INTO kv VALUES ('a', 1)")
            raise RuntimeError("boom")
        assert s.execute("SELECT count(*) FROM kv").fetchone() == (0,)


WORKER = """
import sys
from keystead.core.localstore import LocalStore
with LocalStore(sys.argv[1], ["CREATE TABLE kv (k TEXT PRIMARY KEY, v INT NOT NULL)"]) as s:
    for _ in range(int(sys.argv[2])):
        with s.transaction() as db:  # read, then write: a lost update without the lock
            row = db.execute("SELECT v FROM kv WHERE k='n'").fetchone()
            db.execute("INSERT OR REPLACE INTO kv VALUES ('n', ?)", ((row[0] if row else 0) + 1,))
"""


def test_twelve_processes_at_once_lose_no_update(tmp_path: Path) -> None:
    path, each = tmp_path / "s.sqlite", 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(each)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(12)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]  # every pipe read and closed
    assert [p.returncode for p in procs] == [0] * 12, errors
    with LocalStore(path, [V1]) as s:
        assert s.execute("SELECT v FROM kv WHERE k='n'").fetchone() == (12 * each,)
