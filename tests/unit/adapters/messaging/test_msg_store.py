"""The local message store: sealed at rest, replay tags outlive rm, the cursor moves atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from keystead.adapters.messaging._store import MessageStore, record
from keystead.core import DecryptionFailed, Home


class _Keystore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}


class _Device:
    """What the store needs from a device: its home, account and keystore."""

    def __init__(self, path: Path) -> None:
        self.home, self.account, self.keystore = Home(path), "bob", _Keystore()
        self.saved = 0

    def save(self) -> None:
        self.saved += 1


def test_store_round_trip_is_encrypted_at_rest(tmp_path: Path) -> None:
    dev = _Device(tmp_path)
    store = MessageStore(dev)  # type: ignore[arg-type]
    tag = store.tag("alice@h", "id1")
    [m] = store.add(
        [
            record(
                spool=7,
                id="id1",
                sender="alice@h",
                device="d",
                time=5,
                received=6,
                verified=True,
                text="very secret words",
            )
        ],
        [tag],
        7,
    )
    assert store.cursor() == 7 and dev.saved == 1
    assert store.get(m.local) == m and m.to_json()["text"] == "very secret words"
    assert store.seen([tag, store.tag("alice@h", "id2")]) == {tag}
    store.close()
    raw = (tmp_path / "messaging.sqlite").read_bytes()
    wal = tmp_path / "messaging.sqlite-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"very secret" not in raw and b"alice" not in raw

    again = MessageStore(dev)  # type: ignore[arg-type]
    assert [x.text for x in again.all()] == ["very secret words"]
    again.remove(m.local)
    assert again.get(m.local) is None
    assert again.seen([tag]) == {tag}  # a removed message's id is still refused as a replay
    again.close()


def test_refused_records_have_no_text_and_ids_are_not_reused(tmp_path: Path) -> None:
    store = MessageStore(_Device(tmp_path))  # type: ignore[arg-type]
    a, b = store.add(
        [
            record(spool=1, received=1, verified=False, reason="malformed message"),
            record(spool=2, received=1, verified=False, reason="x"),
        ],
        [],
        2,
    )
    assert a.to_json()["verified"] is False and a.to_json()["text"] is None
    assert a.to_json()["refused"] == "malformed message"
    store.remove(b.local)
    [c] = store.add([record(spool=3, received=1, verified=False, reason="y")], [], 3)
    assert c.local > b.local
    store.close()


def test_another_key_cannot_open_the_store(tmp_path: Path) -> None:
    dev = _Device(tmp_path)
    store = MessageStore(dev)  # type: ignore[arg-type]
    store.add([record(spool=1, received=1, verified=True, text="t")], [], 1)
    store.close()
    other = MessageStore(_Device(tmp_path))  # type: ignore[arg-type]  # same file, another key
    with pytest.raises(DecryptionFailed):
        list(other.all())
    other.close()
