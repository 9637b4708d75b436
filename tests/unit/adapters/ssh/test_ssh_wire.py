"""The strict SSH wire reader: every overrun and leftover byte is an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from keystead.adapters.ssh import _wire
from keystead.core.errors import FormatError


def test_round_trip_values() -> None:
    data = _wire.uint32(7) + _wire.string("héllo") + _wire.boolean(True) + _wire.mpint(0x80)
    r = _wire.Reader(data + b"\x05")
    assert (r.uint32(), r.text(), r.boolean(), r.mpint(), r.byte()) == (7, "héllo", True, 0x80, 5)
    r.end()


@pytest.mark.parametrize(
    "data, read",
    [
        (b"\x00\x00\x00", "uint32"),
        (b"\x00\x00\x00\x05abcd", "string"),
        (b"\xff\xff\xff\xff", "string"),
        (b"\x02", "boolean"),
        (b"\x00\x00\x00\x01\x80", "mpint"),  # negative
        (b"\x00\x00\x00\x02\x00\x01", "mpint"),  # not minimal
        (b"\x00\x00\x00\x01\xff", "text"),  # not UTF-8
        (b"", "byte"),
    ],
)
def test_malformed(data: bytes, read: str) -> None:
    with pytest.raises(FormatError):
        getattr(_wire.Reader(data), read)()


def test_trailing_bytes_are_an_error() -> None:
    r = _wire.Reader(_wire.string(b"x") + b"!")
    r.string()
    with pytest.raises(FormatError):
        r.end()


@given(st.integers(min_value=0, max_value=2**600))
def test_mpint_round_trip(value: int) -> None:
    r = _wire.Reader(_wire.mpint(value))
    assert r.mpint() == value
    r.end()


@given(st.binary(max_size=64))
def test_reader_only_raises_format_error(data: bytes) -> None:
    r = _wire.Reader(data)
    try:
        while True:
            r.string()
    except FormatError:
        pass
