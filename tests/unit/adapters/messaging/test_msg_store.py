"""The local message store: sealed at rest, replay tags outlive rm, the cursor moves atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
from keystead.adapters.messaging._store import MessageStore, record
from keystead.core import DecryptionFailed, Home


class _Device:
    """What the store needs from a device: its home, account and (real) keystore."""

    def __init__(self, path: Path) -> None:
        from keystead.core.keystore import Keystore

        self.home, self.account = Home(path), "bob"
        self.keystore = Keystore.create(path / "keystore.json", "pw", {})
        self.saved = 0

    def save(self) -> None:
        self.saved += 1
        self.keystore.save()


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
    assert store.cursor() == 7
    # the store key was created once and is in the keystore file on disk
    from keystead.core.keystore import Keystore

    on_disk = Keystore.open(dev.keystore.path, "pw")
    assert on_disk.data["messaging"]["store_key"] == dev.keystore.data["messaging"]["store_key"]
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
    (tmp_path / "keystore.json").unlink()  # a new keystore on the same home: another key
    other = MessageStore(_Device(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):
        list(other.all())
    other.close()
