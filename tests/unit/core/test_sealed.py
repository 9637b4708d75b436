"""Sealed-key records: versioned, naming owner, key and epoch, parsed strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from keystead.core import _umbral
from keystead.core._encoding import b64e, canonical_json
from keystead.core._umbral import PREPublicKey
from keystead.core.chain import ChainState, CollectionInfo, EpochInfo
from keystead.core.crypto import SigningKey
from keystead.core.epochs import new_epoch
from keystead.core.errors import (
    DecryptionFailed,
    FormatError,
    UnsupportedVersion,
    VerificationError,
)
from keystead.core.sealed import MAX_SEALED_PLAINTEXT, SealedKey, seal_key


def chain_with(coll: CollectionInfo) -> ChainState:
    pk = _umbral.PRESecretKey.generate().public_key
    vk = SigningKey.generate().verify_key
    return ChainState("alice", vk, vk, 0, pk, pk, {}, {coll.name: coll}, {0: pk}, 0, "h", 0)


def label(epochs: int) -> tuple[list[_umbral.PRESecretKey], ChainState]:
    made = [new_epoch("alice", "documents/x", "keys", e, None) for e in range(1, epochs + 1)]
    coll = CollectionInfo(
        "documents/x",
        "keys",
        {
            m.body["epoch"]: EpochInfo(m.body["epoch"], PREPublicKey(m.secret.public_key.raw), i)
            for i, m in enumerate(made)
        },
    )
    return [m.secret for m in made], chain_with(coll)


def test_seal_key_uses_the_current_epoch_and_round_trips() -> None:
    secrets, chain = label(2)
    rec = seal_key(chain, "documents/x", b"a document key")
    assert (rec.owner, rec.key, rec.epoch) == ("alice", "documents/x", 2)
    assert SealedKey.from_bytes(rec.to_bytes()) == rec
    assert _umbral.decrypt(secrets[1], rec.capsule, rec.ciphertext) == b"a document key"
    with pytest.raises(DecryptionFailed):  # the older epoch's secret opens nothing
        _umbral.decrypt(secrets[0], rec.capsule, rec.ciphertext)


def test_seal_key_refuses_unknown_keys_and_oversized_secrets() -> None:
    _, chain = label(1)
    with pytest.raises(VerificationError):
        seal_key(chain, "documents/y", b"x")
    with pytest.raises(FormatError):
        seal_key(chain, "documents/x", bytes(MAX_SEALED_PLAINTEXT + 1))


def _record(**change: Any) -> bytes:
    _, chain = label(1)
    obj = json.loads(seal_key(chain, "documents/x", b"k").to_bytes())
    obj.update(change)
    return canonical_json({k: v for k, v in obj.items() if v is not None})


def test_valid_record_parses() -> None:  # the base every strictness case changes
    assert SealedKey.from_bytes(_record()).epoch == 1


@pytest.mark.parametrize(
    "change,error",
    [
        ({"v": 1}, UnsupportedVersion),
        ({"v": 3}, UnsupportedVersion),
        ({"extra": 1}, FormatError),
        ({"epoch": None}, FormatError),
        ({"epoch": 0}, FormatError),
        ({"epoch": True}, FormatError),
        ({"epoch": "1"}, FormatError),
        ({"owner": "Bad Name"}, FormatError),
        ({"key": "Bad Key"}, FormatError),
        ({"capsule": b64e(bytes(104))}, FormatError),
        ({"ciphertext": b64e(bytes(39))}, FormatError),
        ({"ciphertext": "!!"}, FormatError),
    ],
)
def test_records_are_parsed_strictly(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SealedKey.from_bytes(_record(**change))


def test_garbage_and_oversized_records_are_format_errors() -> None:
    for raw in (b"", b"[]", b"\xff", b"x" * (2 * MAX_SEALED_PLAINTEXT + 1)):
        with pytest.raises(FormatError):
            SealedKey.from_bytes(raw)
