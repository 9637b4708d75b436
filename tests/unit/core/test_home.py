"""The device's local cache keeps each item exactly as the service stored it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from keystead.core.home import LocalCache
from keystead.core.items import SealedItem

ITEM = SealedItem("github", 3, 2, b"c" * 40, False, 17, "0123456789abcdef", b"s" * 64)


def test_cached_items_keep_their_writer_and_signature(tmp_path: Path) -> None:
    cache = LocalCache(tmp_path / "cache.sqlite")
    cache.store("passwords", [ITEM], 17)
    assert cache.item("passwords", "github") == ITEM
    assert list(cache.items("passwords")) == [ITEM]
    assert cache.cursor("passwords") == 17
    cache.close()
    again = LocalCache(tmp_path / "cache.sqlite")  # reopened: nothing is dropped
    assert again.item("passwords", "github") == ITEM


def test_queued_writes_keep_their_writer_and_signature(tmp_path: Path) -> None:
    cache = LocalCache(tmp_path / "cache.sqlite")
    queued = SealedItem("a", 1, 1, b"c" * 40, True, 0, "0123456789abcdef", b"t" * 64)
    cache.queue("notes", queued)
    assert cache.pending("notes") == [queued]
    cache.unqueue("notes", "a")
    assert cache.pending("notes") == []


def test_a_cache_of_the_version_1_layout_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE items (collection TEXT, id TEXT, version INT, epoch INT,
            ciphertext BLOB, deleted INT, seq INT, PRIMARY KEY (collection, id));
        CREATE TABLE cursors (collection TEXT PRIMARY KEY, seq INT);
        INSERT INTO items VALUES ('notes', 'old', 1, 1, x'00', 0, 5);
        INSERT INTO cursors VALUES ('notes', 5);
    """)
    db.close()
    cache = LocalCache(path)
    assert cache.item("notes", "old") is None and cache.cursor("notes") == 0
    cache.store("notes", [ITEM], 17)
    assert cache.item("notes", "github") == ITEM
