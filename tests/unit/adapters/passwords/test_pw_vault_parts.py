"""The adapter object, the lookup index and the sync resolver, without a service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from keystead.adapters.passwords import adapter
from keystead.adapters.passwords._entry import Entry
from keystead.adapters.passwords._index import Index, entry_tokens, name_token, url_tokens
from keystead.adapters.passwords._vault import resolve
from keystead.core import Adapter, Record


def test_adapter_object() -> None:
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.collections, adapter.commands) == (
        "passwords",
        ("passwords",),
        ("passwords",),
    )
    assert adapter.router(object()) is None
    assert set(adapter.cli_groups()) == {"passwords"}


def test_importing_the_adapter_and_cli_stays_light() -> None:
    code = (
        "import sys; import keystead.adapters.passwords as a; a.adapter.cli_groups(); "
        "heavy = [m for m in ('httpx', 'rich', 'publicsuffixlist', "
        "'keystead.adapters.passwords.formats') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_url_tokens() -> None:
    assert url_tokens("https://Login.Example.co.uk:443/a?b=1") == {
        "u:https://login.example.co.uk/a?b=1",
        "o:https://login.example.co.uk",
        "d:login.example.co.uk",
        "d:example.co.uk",
        "d:co.uk",
    }
    assert url_tokens("example.com") == {
        "u:https://example.com/",
        "o:https://example.com",
        "d:example.com",
    }
    assert url_tokens("http://127.0.0.1:8080/x") == {
        "u:http://127.0.0.1:8080/x",
        "o:http://127.0.0.1:8080",
    }
    assert url_tokens("ftp://x/") == url_tokens("") == set()
    e = Entry(id="a", url="https://a.test/", other_urls=("https://b.test/",))
    assert {"o:https://a.test", "o:https://b.test"} <= entry_tokens(e)


def test_index_finds_candidates_and_forgets_replaced_ones(tmp_path: Path) -> None:
    key = b"k" * 32
    index = Index(tmp_path / "i.sqlite", key)
    assert index.cursor is None
    index.replace([("a", Entry(id="a", url="https://a.test/"), 1), ("b", Entry(id="b"), 1)], 7)
    assert index.cursor == 7
    assert index.candidates(["o:https://a.test"]) == ["a"]
    index.replace([("a", None, 2)])
    assert index.candidates(["o:https://a.test"]) == []
    index.replace([("c", Entry(id="c", url="https://a.test/x"), 1)])
    assert index.versions(["a", "b", "c", "z"]) == {"a": 2, "b": 1, "c": 1}
    index.replace([("d", Entry(id="d", type="card", name="My Visa"), 1)])
    assert index.candidates([name_token("my visa")]) == ["d"]  # any case, any type
    index.close()
    # The file holds no URL, and another key cannot use it (it starts again).
    assert b"a.test" not in (tmp_path / "i.sqlite").read_bytes()
    assert b"visa" not in (tmp_path / "i.sqlite").read_bytes().lower()
    other = Index(tmp_path / "i.sqlite", b"x" * 32)
    assert other.cursor is None and other.candidates(["o:https://a.test"]) == []
    other.close()


def test_a_corrupt_index_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "i.sqlite").write_bytes(b"not a database" * 100)
    index = Index(tmp_path / "i.sqlite", b"k" * 32)
    assert index.cursor is None
    index.close()


def test_an_unversioned_index_file_migrates_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from keystead.core import UnsupportedVersion

    old = sqlite3.connect(tmp_path / "i.sqlite")  # the schema before versions: no user_version
    old.executescript(
        "CREATE TABLE tokens (token BLOB NOT NULL, id TEXT NOT NULL);"
        "INSERT INTO tokens VALUES (x'00', 'a'), (x'00', 'a');"
        "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
        "CREATE TABLE versions (id TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    )
    old.close()
    index = Index(tmp_path / "i.sqlite", b"k" * 32)
    assert index.cursor is None and index.candidates(["o:https://a.test"]) == []
    index.replace([("a", Entry(id="a", url="https://a.test/"), 1)] * 2)  # twice: one row
    index.close()
    db = sqlite3.connect(tmp_path / "i.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM tokens WHERE id='a'").fetchone()[0] == len(
        entry_tokens(Entry(id="a", url="https://a.test/"))
    )
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(UnsupportedVersion):
        Index(tmp_path / "i.sqlite", b"k" * 32)


def test_resolve_merges_a_queued_write_with_the_newer_remote() -> None:
    base = Entry(id="a", url="https://a.test/", password="base", updated=1)
    mine = base.edit(10, password="mine")
    theirs = base.edit(20, password="theirs")
    out = Entry.from_bytes(
        resolve(Record("a", 2, mine.to_bytes()), Record("a", 2, theirs.to_bytes()))
    )
    assert out.password == "theirs" and out.had_conflict
    assert ("password", "mine", True) in [(h.field, h.value, h.conflict) for h in out.history]
    # A descendant is a plain update, not a conflict.
    later = theirs.edit(30, notes="n")
    out = Entry.from_bytes(
        resolve(Record("a", 3, later.to_bytes()), Record("a", 2, theirs.to_bytes()))
    )
    assert out == later
    # Deletions: ours wins; a remote deletion does not eat our edit.
    assert resolve(Record("a", 2, b"", deleted=True), Record("a", 2, theirs.to_bytes())) == b""
    assert resolve(Record("a", 2, mine.to_bytes()), Record("a", 2, b"", True)) == mine.to_bytes()
