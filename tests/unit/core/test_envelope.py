"""The core signed envelope: exact bytes, purpose, signer and version, verified before parsed."""

from __future__ import annotations

import json

import pytest
from keystead.core import (
    FormatError,
    InvalidSignature,
    SigningKey,
    UnsupportedVersion,
    b64e,
    canonical_json,
)
from keystead.core.envelope import MAX_BODY, SignedEnvelope

PURPOSE = "keystead/v2/test/thing"


def _signed(key: SigningKey, body: bytes = b'{"a":1}', signer: str = "alice/dev1") -> bytes:
    return SignedEnvelope.sign(key, purpose=PURPOSE, signer=signer, body=body).to_bytes()


def _rewrap(raw: bytes, **changes: object) -> bytes:
    obj = json.loads(raw)
    obj.update(changes)
    return canonical_json(obj)


def test_round_trip_returns_the_exact_body() -> None:
    key = SigningKey.generate()
    body = b'{"b": 2,  "a":1}'  # not canonical: the exact bytes come back
    env = SignedEnvelope.from_bytes(_signed(key, body), purpose=PURPOSE)
    assert (env.purpose, env.signer) == (PURPOSE, "alice/dev1")
    assert env.verify(key.verify_key) == body


def test_another_key_body_signer_or_purpose_does_not_verify() -> None:
    key = SigningKey.generate()
    raw = _signed(key)
    with pytest.raises(InvalidSignature):
        SignedEnvelope.from_bytes(raw, purpose=PURPOSE).verify(SigningKey.generate().verify_key)
    for change in (
        {"body": b64e(b'{"a":2}')},
        {"signer": "alice/dev2"},
        {"purpose": "keystead/v2/test/other"},
    ):
        forged = _rewrap(raw, **change)
        purpose = str(change.get("purpose", PURPOSE))
        with pytest.raises(InvalidSignature):
            SignedEnvelope.from_bytes(forged, purpose=purpose).verify(key.verify_key)


def test_parsing_is_strict() -> None:
    key = SigningKey.generate()
    raw = _signed(key)
    with pytest.raises(FormatError):  # made for another purpose than the reader expects
        SignedEnvelope.from_bytes(raw, purpose="keystead/v2/test/other")
    with pytest.raises(UnsupportedVersion):
        SignedEnvelope.from_bytes(_rewrap(raw, v=2), purpose=PURPOSE)
    for bad in (
        _rewrap(raw, extra=1),
        _rewrap(raw, signer="has space"),
        _rewrap(raw, signer=""),
        _rewrap(raw, sig=b64e(b"s" * 63)),
        _rewrap(raw, purpose="not/a/purpose"),
        raw[:-5],
        b"[]",
    ):
        with pytest.raises(FormatError):
            SignedEnvelope.from_bytes(bad, purpose=PURPOSE)
    with pytest.raises(FormatError):
        SignedEnvelope.sign(key, purpose=PURPOSE, signer="a", body=bytes(MAX_BODY + 1))
