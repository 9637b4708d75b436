"""Sealed items: the associated data binds account, collection, id, version, epoch and
writer; the writer's signature covers the sealed bytes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from keystead.core._encoding import b64e
from keystead.core.chain import device_id_for
from keystead.core.crypto import SigningKey, random_bytes
from keystead.core.errors import DecryptionFailed, FormatError, InvalidSignature
from keystead.core.items import (
    MAX_ITEM_BYTES,
    MIN_CIPHERTEXT,
    SealedItem,
    check_item_id,
    open_item,
    seal_item,
)

KEY = random_bytes(32)
WHERE = {"account": "alice", "collection": "passwords"}
SIGNER = SigningKey.generate()
WRITER = device_id_for(SIGNER.verify_key)
OTHER = SigningKey.generate()


def sealed(**kw: Any) -> SealedItem:
    args = {"item_id": "github", "version": 2, "epoch": 1, "plaintext": b"hunter2",
            "writer": WRITER, "signer": SIGNER, **WHERE, **kw}
    return seal_item(KEY, **args)


def test_round_trip() -> None:
    item = sealed()
    assert open_item(KEY, **WHERE, item=item) == b"hunter2"
    assert SealedItem.from_json(item.to_json()) == item
    assert item.writer == WRITER
    item.verify(SIGNER.verify_key, **WHERE)


@pytest.mark.parametrize("change", [
    {"id": "gitlab"}, {"version": 3}, {"version": 1}, {"epoch": 2}, {"deleted": True},
    {"writer": device_id_for(OTHER.verify_key)},
])
def test_service_cannot_move_relabel_or_replay_an_item(change: dict[str, Any]) -> None:
    with pytest.raises(DecryptionFailed):
        open_item(KEY, **WHERE, item=replace(sealed(), **change))


@pytest.mark.parametrize("change", [
    {"id": "gitlab"}, {"version": 3}, {"epoch": 2}, {"deleted": True},
    {"writer": device_id_for(OTHER.verify_key)}, {"ciphertext": b"x" * 40},
])
def test_signature_covers_every_bound_field_and_the_ciphertext(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidSignature):
        replace(sealed(), **change).verify(SIGNER.verify_key, **WHERE)


def test_signature_by_another_device_or_for_another_place_is_refused() -> None:
    item = sealed()
    with pytest.raises(InvalidSignature):
        item.verify(OTHER.verify_key, **WHERE)
    with pytest.raises(InvalidSignature):
        item.verify(SIGNER.verify_key, account="alice", collection="ssh")
    with pytest.raises(InvalidSignature):
        item.verify(SIGNER.verify_key, account="bob", collection="passwords")
    # A writer that names itself but signs with another key.
    forged = sealed(signer=OTHER)
    with pytest.raises(InvalidSignature):
        forged.verify(SIGNER.verify_key, **WHERE)


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


BASE = sealed()


def _json(**change: Any) -> dict[str, Any]:
    obj = BASE.to_json()
    obj.update(change)
    return {k: v for k, v in obj.items() if v is not _DROP}


_DROP = object()


def test_valid_item_json_parses() -> None:  # the base every strictness case changes
    assert SealedItem.from_json(_json()) == BASE


@pytest.mark.parametrize("change", [
    {"version": 0}, {"epoch": 0}, {"version": True}, {"version": "1"}, {"deleted": "no"},
    {"seq": -1}, {"ciphertext": "AA=="}, {"id": "a b"}, {"ciphertext": _DROP},
    {"ciphertext": b64e(bytes(MAX_ITEM_BYTES + 1))},
    {"ciphertext": b64e(bytes(MIN_CIPHERTEXT - 1))}, {"ciphertext": ""},
    {"writer": _DROP}, {"writer": "laptop"}, {"writer": "A" * 16}, {"writer": 5},
    {"sig": _DROP}, {"sig": b64e(bytes(63))}, {"sig": "!!"},
])
def test_item_json_is_parsed_strictly(change: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        SealedItem.from_json(_json(**change))


def test_item_json_must_be_an_object() -> None:
    with pytest.raises(FormatError):
        SealedItem.from_json([])
