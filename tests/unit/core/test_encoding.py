"""Strict encodings: canonical JSON, strict base64, strict JSON parsing."""

from __future__ import annotations

import pytest
from keystead.core._encoding import b64d, b64e, canonical_json, parse_json_object
from keystead.core.errors import FormatError


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xff\xfe", bytes(range(256)), b"abcd"])
def test_b64_round_trip(raw: bytes) -> None:
    text = b64e(raw)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64d(text) == raw


@pytest.mark.parametrize(
    "text", ["AA==", "A", "AB", " AA", "AA\n", "A+A", "A/A", "AA.", 5, None, b"AA", "é"]
)
def test_b64d_refuses_anything_but_canonical_unpadded_urlsafe(text: object) -> None:
    with pytest.raises(FormatError):
        b64d(text)


def test_b64d_refuses_noncanonical_trailing_bits_and_wrong_sizes() -> None:
    assert b64d("AA") == b"\x00"
    with pytest.raises(FormatError):
        b64d("AB")  # same byte, non-zero padding bits
    with pytest.raises(FormatError, match="expected 2 bytes"):
        b64d("AA", size=2, what="thing")


def test_canonical_json_sorts_keys_and_has_no_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


@pytest.mark.parametrize(
    "value", [1.5, {1: "x"}, 2**53, -(2**53), b"x", {"a": {1, 2}}, float("nan")]
)
def test_canonical_json_refuses_what_it_cannot_encode_canonically(value: object) -> None:
    with pytest.raises(FormatError):
        canonical_json(value)


def test_canonical_json_refuses_deep_nesting() -> None:
    value: object = "x"
    for _ in range(40):
        value = [value]
    with pytest.raises(FormatError):
        canonical_json(value)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"1",
        b'"x"',
        b"{",
        b'{"a":1,"a":2}',
        b'{"a":1.0}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b"\xff{}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_parse_json_object_is_strict(raw: bytes) -> None:
    with pytest.raises(FormatError):
        parse_json_object(raw)


def test_parse_json_object_accepts_an_object() -> None:
    assert parse_json_object(b'{"a": [1, "b", null]}') == {"a": [1, "b", None]}
