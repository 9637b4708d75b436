"""Sealed items: the associated data binds account, collection, id, version, epoch and
writer; the writer's signature covers the sealed bytes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from keystead.core._encoding import b64e
from keystead.core.chain import device_id_for
from keystead.core.crypto import SigningKey, VerifyKey, random_bytes
from keystead.core.errors import DecryptionFailed, FormatError, InvalidSignature
from keystead.core.items import (
    GROUP,
    MAX_ITEM_BYTES,
    MIN_CIPHERTEXT,
    ItemVerifier,
    SealedItem,
    check_item_id,
    open_item,
    seal_item,
    sign_items,
)

KEY = random_bytes(32)
WHERE = {"account": "alice", "collection": "passwords"}
SIGNER = SigningKey.generate()
WRITER = device_id_for(SIGNER.verify_key)
OTHER = SigningKey.generate()


def sealed(*, signer: SigningKey = SIGNER, **kw: Any) -> SealedItem:
    """One item, sealed and signed as a write of its own."""
    args = {
        "item_id": "github",
        "version": 2,
        "epoch": 1,
        "plaintext": b"hunter2",
        "writer": WRITER,
        **WHERE,
        **kw,
    }
    [item] = sign_items(signer, **WHERE, items=[seal_item(KEY, **args)])
    return item


def verify(item: SealedItem, key: VerifyKey = SIGNER.verify_key, **where: str) -> None:
    ItemVerifier().verify(item, key, **{**WHERE, **where})


def test_round_trip() -> None:
    item = sealed()
    assert open_item(KEY, **WHERE, item=item) == b"hunter2"
    assert SealedItem.from_json(item.to_json()) == item
    assert item.writer == WRITER
    verify(item)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "gitlab"},
        {"version": 3},
        {"version": 1},
        {"epoch": 2},
        {"deleted": True},
        {"writer": device_id_for(OTHER.verify_key)},
    ],
)
def test_service_cannot_move_relabel_or_replay_an_item(change: dict[str, Any]) -> None:
    with pytest.raises(DecryptionFailed):
        open_item(KEY, **WHERE, item=replace(sealed(), **change))


@pytest.mark.parametrize(
    "change",
    [
        {"id": "gitlab"},
        {"version": 3},
        {"epoch": 2},
        {"deleted": True},
        {"writer": device_id_for(OTHER.verify_key)},
        {"ciphertext": b"x" * 40},
    ],
)
def test_signature_covers_every_bound_field_and_the_ciphertext(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidSignature):
        verify(replace(sealed(), **change))


def test_signature_by_another_device_or_for_another_place_is_refused() -> None:
    item = sealed()
    with pytest.raises(InvalidSignature):
        verify(item, OTHER.verify_key)
    with pytest.raises(InvalidSignature):
        verify(item, collection="ssh")
    with pytest.raises(InvalidSignature):
        verify(item, account="bob")
    # A writer that names itself but signs with another key.
    with pytest.raises(InvalidSignature):
        verify(sealed(signer=OTHER))
    with pytest.raises(InvalidSignature):  # unsigned
        verify(
            seal_item(KEY, **WHERE, item_id="a", version=1, epoch=1, plaintext=b"x", writer=WRITER)
        )


def _write(n: int) -> list[SealedItem]:
    plain = [
        seal_item(KEY, **WHERE, item_id=f"i{k}", version=1, epoch=1, plaintext=b"x", writer=WRITER)
        for k in range(n)
    ]
    return sign_items(SIGNER, **WHERE, items=plain)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 255, GROUP, GROUP + 1])
def test_one_signature_covers_a_group_and_each_item_proves_its_place(n: int) -> None:
    items = _write(n)
    assert len({i.signature for i in items}) == (n + GROUP - 1) // GROUP
    verifier = ItemVerifier()
    for item in items:
        verifier.verify(item, SIGNER.verify_key, **WHERE)
        assert SealedItem.from_json(item.to_json()) == item


def test_a_proof_moved_to_another_item_or_altered_is_refused() -> None:
    a, b, c = _write(3)
    with pytest.raises(InvalidSignature):  # b's place in the tree, claimed by a
        verify(replace(a, proof=b.proof))
    flipped = a.proof[:-1] + bytes([a.proof[-1] ^ 1])
    for proof in (flipped, a.proof[:4], a.proof + bytes(32), b"\x00\x05\x00\x03"):
        with pytest.raises(InvalidSignature):
            verify(replace(a, proof=proof))
    # An item of another write, with its own valid signature, does not fit this tree.
    [other] = _write(1)
    with pytest.raises(InvalidSignature):
        verify(replace(other, signature=a.signature))
    for item in (a, b, c):
        verify(item)


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
    for bad, key in [
        (replace(item, ciphertext=flipped), KEY),
        (replace(item, ciphertext=item.ciphertext[:20]), KEY),
        (item, random_bytes(32)),
    ]:
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


@pytest.mark.parametrize(
    "change",
    [
        {"version": 0},
        {"epoch": 0},
        {"version": True},
        {"version": "1"},
        {"deleted": "no"},
        {"seq": -1},
        {"ciphertext": "AA=="},
        {"id": "a b"},
        {"ciphertext": _DROP},
        {"ciphertext": b64e(bytes(MAX_ITEM_BYTES + 1))},
        {"ciphertext": b64e(bytes(MIN_CIPHERTEXT - 1))},
        {"ciphertext": ""},
        {"writer": _DROP},
        {"writer": "laptop"},
        {"writer": "A" * 16},
        {"writer": 5},
        {"sig": _DROP},
        {"sig": b64e(bytes(63))},
        {"sig": "!!"},
        {"proof": _DROP},
        {"proof": ""},
        {"proof": b64e(bytes(5))},
        {"proof": b64e(bytes(4 + 32 * 9))},
    ],
)
def test_item_json_is_parsed_strictly(change: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        SealedItem.from_json(_json(**change))


def test_item_json_must_be_an_object() -> None:
    with pytest.raises(FormatError):
        SealedItem.from_json([])
