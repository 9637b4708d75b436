"""Sealed items: the AEAD's associated data binds account, collection, id, version, epoch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from keystead.core._encoding import b64e
from keystead.core.crypto import random_bytes
from keystead.core.errors import DecryptionFailed, FormatError
from keystead.core.items import MAX_ITEM_BYTES, SealedItem, check_item_id, open_item, seal_item

KEY = random_bytes(32)
WHERE = {"account": "alice", "collection": "passwords"}


def sealed(**kw: Any) -> SealedItem:
    args = {"item_id": "github", "version": 2, "epoch": 1, "plaintext": b"hunter2", **WHERE, **kw}
    return seal_item(KEY, **args)


def test_round_trip() -> None:
    item = sealed()
    assert open_item(KEY, **WHERE, item=item) == b"hunter2"
    assert SealedItem.from_json(item.to_json()) == item


@pytest.mark.parametrize("change", [
    {"id": "gitlab"}, {"version": 3}, {"version": 1}, {"epoch": 2}, {"deleted": True},
])
def test_service_cannot_move_relabel_or_replay_an_item(change: dict[str, Any]) -> None:
    with pytest.raises(DecryptionFailed):
        open_item(KEY, **WHERE, item=replace(sealed(), **change))


def test_item_moved_to_another_collection_or_account_fails() -> None:
    item = sealed()
    with pytest.raises(DecryptionFailed):
        open_item(KEY, account="alice", collection="ssh", item=item)
    with pytest.raises(DecryptionFailed):
        open_item(KEY, account="bob", collection="passwords", item=item)


def test_older_version_replayed_as_the_newer_one_fails() -> None:
    v1 = sealed(version=1, plaintext=b"old")
    v2 = sealed(version=2, plaintext=b"new")
    replayed = replace(v2, ciphertext=v1.ciphertext)
    with pytest.raises(DecryptionFailed):
        open_item(KEY, **WHERE, item=replayed)


def test_tampered_or_truncated_ciphertext_and_wrong_key_fail_the_same_way() -> None:
    item = sealed()
    flipped = bytes([item.ciphertext[0] ^ 1]) + item.ciphertext[1:]
    messages = set()
    for bad, key in [(replace(item, ciphertext=flipped), KEY),
                     (replace(item, ciphertext=item.ciphertext[:20]), KEY),
                     (item, random_bytes(32))]:
        with pytest.raises(DecryptionFailed) as exc:
            open_item(key, **WHERE, item=bad)
        messages.add(str(exc.value))
    assert len(messages) == 1


@pytest.mark.parametrize("item_id", ["", "a b", "a/b", "x" * 129, "a\x00", "é", 5])
def test_bad_item_ids_are_refused(item_id: Any) -> None:
    with pytest.raises(FormatError):
        check_item_id(item_id)


def test_oversized_plaintext_is_refused() -> None:
    with pytest.raises(FormatError):
        sealed(plaintext=bytes(MAX_ITEM_BYTES))


@pytest.mark.parametrize("obj", [
    [], {"id": "a", "version": 0, "epoch": 1, "ciphertext": "AA"},
    {"id": "a", "version": 1, "epoch": 0, "ciphertext": "AA"},
    {"id": "a", "version": True, "epoch": 1, "ciphertext": "AA"},
    {"id": "a", "version": "1", "epoch": 1, "ciphertext": "AA"},
    {"id": "a", "version": 1, "epoch": 1, "ciphertext": "AA", "deleted": "no"},
    {"id": "a", "version": 1, "epoch": 1, "ciphertext": "AA=="},
    {"id": "a b", "version": 1, "epoch": 1, "ciphertext": "AA"},
    {"id": "a", "version": 1, "epoch": 1},
    {"id": "a", "version": 1, "epoch": 1, "ciphertext": b64e(bytes(MAX_ITEM_BYTES + 1))},
])
def test_item_json_is_parsed_strictly(obj: Any) -> None:
    with pytest.raises(FormatError):
        SealedItem.from_json(obj)
