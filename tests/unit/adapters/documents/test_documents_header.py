"""The header: one encoding, strict parsing, typed errors, no decryption needed to read it."""

from __future__ import annotations

import io
import struct

import pytest
from documents_helpers import make_header, protect
from keystead.adapters.documents import MAGIC_V2, Header, read_header
from keystead.core.errors import FormatError, UnsupportedVersion


def test_round_trip_and_read_header_stops_at_body() -> None:
    header = make_header(label="Conseil — procès-verbaux", owner="bob@ks.example:8443")
    assert Header.from_bytes(header.to_bytes()) == header
    src = io.BytesIO(header.to_bytes() + b"BODY")
    assert read_header(src) == header
    assert src.read() == b"BODY"


def test_read_header_on_a_document_needs_no_key() -> None:
    header = make_header()
    assert read_header(io.BytesIO(protect(b"secret", header))) == header


def test_new_fills_fresh_id_prefix_and_time() -> None:
    a = Header.new(owner="a@b", label="l", service_url="https://s", sealed_key=b"c")
    b = Header.new(owner="a@b", label="l", service_url="https://s", sealed_key=b"c")
    assert a.document_id != b.document_id and a.nonce_prefix != b.nonce_prefix
    assert a.created > 1_700_000_000 and a.chunk_size == 65536
    assert a.created_at.timestamp() == a.created


@pytest.mark.parametrize("version", [b"1\n", b"0\n", b"10", b"2 "])
def test_unknown_version(version: bytes) -> None:
    data = make_header().to_bytes().replace(MAGIC_V2, MAGIC_V2[:-2] + version, 1)
    with pytest.raises(UnsupportedVersion):
        read_header(io.BytesIO(data))
    with pytest.raises(UnsupportedVersion):
        Header.from_bytes(data)


@pytest.mark.parametrize("data", [b"", b"age-encryption.org/v1\n", b"%PDF-1.7\n" * 4])
def test_not_a_document(data: bytes) -> None:
    with pytest.raises(FormatError, match="not a Keystead document"):
        read_header(io.BytesIO(data))


def test_every_truncation_of_the_header_is_a_format_error() -> None:
    raw = make_header().to_bytes()
    for n in range(1, len(raw)):
        with pytest.raises(FormatError) as info:
            read_header(io.BytesIO(raw[:n]))
        assert not isinstance(info.value, UnsupportedVersion)
        with pytest.raises(FormatError):
            Header.from_bytes(raw[:n])


def _with_body(body: bytes) -> bytes:
    return MAGIC_V2 + struct.pack(">H", len(body)) + body


def test_extra_bytes_inside_the_header_length() -> None:
    raw = make_header().to_bytes()
    body = raw[len(MAGIC_V2) + 2 :]
    with pytest.raises(FormatError, match="unexpected bytes"):
        read_header(io.BytesIO(_with_body(body + b"\x00")))
    with pytest.raises(FormatError):
        Header.from_bytes(raw + b"\x00")


def test_oversized_header_length_is_refused_before_reading() -> None:
    data = MAGIC_V2 + struct.pack(">H", 60000) + b"\x00" * 60000
    with pytest.raises(FormatError, match="too large"):
        read_header(io.BytesIO(data))


def test_non_utf8_label() -> None:
    raw = make_header(label="ab").to_bytes()
    bad = raw.replace(b"\x02ab", b"\x02\xff\xfe", 1)
    with pytest.raises(FormatError, match="UTF-8"):
        Header.from_bytes(bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"owner": "alice"},
        {"owner": "alice@"},
        {"owner": "@example.org"},
        {"owner": "alice@example.org:0"},
        {"owner": "alice@example.org:65536"},
        {"owner": "alice@example.org:08443"},
        {"owner": "al ice@example.org"},
        {"owner": "Alice@example.org"},  # one spelling: the core's address grammar
        {"owner": "alice+x@example.org"},
        {"owner": "alice@Example.org"},
        {"label": ""},
        {"label": "x" * 256},
        {"label": "tab\there"},
        {"label": "bidi\u202espoof"},
        {"service_url": "ftp://keys.example.org"},
        {"service_url": "https://"},
        {"service_url": "https://keys example.org"},
        {"service_url": "https://" + "a" * 2048},
        {"document_id": b"short"},
        {"nonce_prefix": b"\x00" * 8},
        {"sealed_key": b""},
        {"sealed_key": b"k" * 2049},
        {"created": -1},
        {"created": 2**64},
        {"created": 1.5},
        {"chunk_size": 5000},
        {"chunk_size": 2048},
        {"chunk_size": 2 * 1024 * 1024},
    ],
)
def test_invalid_fields_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(FormatError):
        make_header(**overrides)


def test_limits_are_accepted_at_the_edge() -> None:
    header = make_header(
        owner="a" * 63 + "@" + ".".join(["h" * 63] * 2) + "." + "h" * 54 + ":65535",  # near 255
        label="é" * 127,
        service_url="https://" + "a" * 2040,
        sealed_key=b"c" * 2048,
        created=2**64 - 1,
        chunk_size=1024 * 1024,
    )
    assert read_header(io.BytesIO(header.to_bytes())) == header


def test_header_digest_covers_every_byte() -> None:
    a, b = make_header(), make_header(label="board2")
    assert a.digest != b.digest and len(a.digest) == 32
