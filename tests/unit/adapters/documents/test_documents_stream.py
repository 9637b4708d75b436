"""The body stream: round trips, and every way of tampering with it fails closed."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from documents_helpers import KEY, make_header, protect
from hypothesis import given, settings
from hypothesis import strategies as st
from keystead.adapters.documents import TAG_SIZE, Header, open_stream, protect_stream
from keystead.adapters.documents._stream import payload_key
from keystead.core.errors import DecryptionFailed, FormatError, KeysteadError

CS = 4096
ENC = CS + TAG_SIZE
BATCH = 1024 * 1024  # plaintext bytes per I/O batch at this chunk size (256 chunks)


def open_bytes(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    open_stream(io.BytesIO(data), out, lambda _h: key)
    return out.getvalue()


def split(doc: bytes) -> tuple[bytes, list[bytes]]:
    header_len = len(make_header().to_bytes())
    body = doc[header_len:]
    return doc[:header_len], [body[i : i + ENC] for i in range(0, len(body), ENC)]


@pytest.mark.parametrize(
    "size",
    [0, 1, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 17]
    + [BATCH - 1, BATCH, BATCH + 1, BATCH + CS, 2 * BATCH, 2 * BATCH + CS + 1],
)
def test_round_trip(size: int) -> None:
    plaintext = os.urandom(size)
    doc = protect(plaintext)
    chunks = max(1, -(-size // CS))
    assert len(doc) == len(make_header().to_bytes()) + size + chunks * TAG_SIZE
    assert open_bytes(doc) == plaintext


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=3 * CS + 100))
def test_round_trip_any_plaintext(plaintext: bytes) -> None:
    assert open_bytes(protect(plaintext)) == plaintext


def test_open_returns_the_header() -> None:
    header = make_header(label="x")
    assert open_stream(io.BytesIO(protect(b"a", header)), io.BytesIO(), lambda _h: KEY) == header


class Trickle(io.RawIOBase):
    """A pipe-like stream: short reads and short writes."""

    def __init__(self, data: bytes = b"", step: int = 1000) -> None:
        self.src, self.step, self.sink = io.BytesIO(data), step, bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.src.read(min(len(b), self.step))
        b[: len(data)] = data
        return len(data)

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self.step)
        self.sink += bytes(b[:n])
        return n


def test_short_reads_and_writes() -> None:
    plaintext = os.urandom(3 * CS + 5)
    sink = Trickle()
    protect_stream(Trickle(plaintext), sink, make_header(), KEY)  # type: ignore[arg-type]
    assert bytes(sink.sink) == protect(plaintext)
    out = Trickle()
    open_stream(Trickle(bytes(sink.sink), step=777), out, lambda _h: KEY)  # type: ignore[arg-type]
    assert bytes(out.sink) == plaintext


def test_progress_counts_input_bytes() -> None:
    plaintext, seen = os.urandom(2 * BATCH + 3), list[int]()
    doc = io.BytesIO()
    protect_stream(io.BytesIO(plaintext), doc, make_header(), KEY, progress=seen.append)
    assert sum(seen) == len(plaintext) and len(seen) == 3
    seen.clear()
    open_stream(io.BytesIO(doc.getvalue()), io.BytesIO(), lambda _h: KEY, progress=seen.append)
    assert sum(seen) == len(doc.getvalue()) - len(make_header().to_bytes())


def test_memory_is_constant() -> None:
    class Zeros(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            n = min(len(b), self.left)
            self.left -= n
            return n

    class Null(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
            return len(b)

    header = make_header(chunk_size=65536)
    tracemalloc.start()
    try:
        protect_stream(Zeros(64 * 1024 * 1024), Null(), header, KEY)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # a few 1 MiB batches, not the 64 MiB document


class FailingSink(io.RawIOBase):
    """A disk that fills up after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if len(b) > self.room:
            raise OSError(28, "No space left on device")
        self.room -= len(b)
        return len(b)


@pytest.mark.parametrize("room", [0, 100, BATCH + 5000, 3 * BATCH])
def test_write_errors_reach_the_caller(room: int) -> None:
    plaintext = os.urandom(4 * BATCH)
    with pytest.raises(OSError, match="No space"):
        protect_stream(io.BytesIO(plaintext), FailingSink(room), make_header(), KEY)  # type: ignore[arg-type]
    doc = protect(plaintext)
    with pytest.raises(OSError, match="No space"):
        open_stream(io.BytesIO(doc), FailingSink(room), lambda _h: KEY)  # type: ignore[arg-type]


def test_wrong_key() -> None:
    with pytest.raises(DecryptionFailed):
        open_bytes(protect(b"hello"), key=os.urandom(32))


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_provider_returning_a_bad_key(bad: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        open_bytes(protect(b"hello"), key=bad)


def test_protect_refuses_a_bad_key() -> None:
    with pytest.raises(ValueError):
        protect(b"x", key=b"short")


def test_truncated_anywhere_in_the_body() -> None:
    doc = protect(os.urandom(2 * CS + 100))
    header_len = len(make_header().to_bytes())
    boundaries = range(header_len, len(doc) + 1, ENC)
    near = {b + d for b in boundaries for d in range(-TAG_SIZE - 1, TAG_SIZE + 2)}
    cuts = sorted(
        {c for c in near | set(range(header_len, len(doc), 13)) if header_len <= c < len(doc)}
    )
    for cut in cuts:
        with pytest.raises(DecryptionFailed):
            open_bytes(doc[:cut])


@pytest.mark.parametrize("chunks", [BATCH // CS, 2 * BATCH // CS])
def test_cut_at_a_batch_boundary(chunks: int) -> None:
    header, parts = split(protect(os.urandom(2 * BATCH + 5)))
    with pytest.raises(DecryptionFailed):
        open_bytes(header + b"".join(parts[:chunks]))


@pytest.mark.parametrize("i", [BATCH // CS - 1, BATCH // CS])
def test_chunks_swapped_across_a_batch_boundary(i: int) -> None:
    header, parts = split(protect(os.urandom(2 * BATCH + 5)))
    parts[i], parts[i + 1] = parts[i + 1], parts[i]
    with pytest.raises(DecryptionFailed):
        open_bytes(header + b"".join(parts))


def test_missing_last_chunk() -> None:
    header, chunks = split(protect(os.urandom(3 * CS)))
    assert len(chunks) == 3
    with pytest.raises(DecryptionFailed):
        open_bytes(header + b"".join(chunks[:2]))


@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * TAG_SIZE, os.urandom(ENC), os.urandom(9000)])
@pytest.mark.parametrize("size", [0, 10, CS, 2 * CS + 5])
def test_extra_bytes_after_the_last_chunk(size: int, extra: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        open_bytes(protect(os.urandom(size)) + extra)


def test_last_chunk_appended_twice() -> None:
    header, chunks = split(protect(os.urandom(2 * CS + 5)))
    with pytest.raises(DecryptionFailed):
        open_bytes(header + b"".join(chunks) + chunks[-1])


@pytest.mark.parametrize(
    "order", [[1, 0, 2, 3], [0, 2, 1, 3], [0, 0, 1, 2, 3], [0, 1, 1, 2, 3], [0, 1, 2, 2, 3], [3]]
)
def test_reordered_or_duplicated_chunks(order: list[int]) -> None:
    header, chunks = split(protect(os.urandom(3 * CS + 5)))
    with pytest.raises(DecryptionFailed):
        open_bytes(header + b"".join(chunks[i] for i in order))


def test_header_from_another_document() -> None:
    key_a, key_b = os.urandom(32), os.urandom(32)
    header_a = make_header(document_id=b"A" * 16, sealed_key=b"capsule-a")
    header_b = make_header(document_id=b"B" * 16, sealed_key=b"capsule-b")
    doc_a, doc_b = protect(b"a" * 100, header_a, key_a), protect(b"b" * 100, header_b, key_b)
    keys = {b"capsule-a": key_a, b"capsule-b": key_b}
    swapped = doc_b[: len(header_b.to_bytes())] + doc_a[len(header_a.to_bytes()) :]
    # Whichever key the grantee ends up with, the body does not open under the wrong header.
    for key in (key_a, key_b):
        with pytest.raises(DecryptionFailed):
            open_bytes(swapped, key=key)
    out = io.BytesIO()
    with pytest.raises(DecryptionFailed):
        open_stream(io.BytesIO(swapped), out, lambda h: keys[h.sealed_key])
    assert out.getvalue() == b""


def test_edited_header_field_with_the_right_key() -> None:
    header = make_header()
    doc = protect(b"payload", header)
    forged = make_header(service_url="https://evil.example").to_bytes()
    with pytest.raises(DecryptionFailed):
        open_bytes(forged + doc[len(header.to_bytes()) :])


def _seal(header: Header, chunks: list[tuple[bytes, bool]]) -> bytes:
    """Hand-build a body with chosen chunk contents and last flags (things protect never does)."""
    aead = AESGCM(payload_key(KEY, header.digest))
    body = b"".join(
        aead.encrypt(header.nonce_prefix + i.to_bytes(4, "big") + bytes([last]), data, None)
        for i, (data, last) in enumerate(chunks)
    )
    return header.to_bytes() + body


def test_hand_built_body_matches_protect() -> None:
    header, data = make_header(), os.urandom(CS + 1)
    assert _seal(header, [(data[:CS], False), (data[CS:], True)]) == protect(data, header)


@pytest.mark.parametrize(
    "chunks",
    [
        [(b"", False)],  # an empty chunk not marked last, and nothing after it
        [(b"x" * CS, False), (b"", False)],
        [(b"x" * CS, False), (b"", False), (b"y", True)],
        [(b"", False), (b"y", True)],
        [(b"x" * CS, False), (b"", True)],  # an empty last chunk after a full one
        [(b"x" * 10, False), (b"y", True)],  # a short chunk not marked last
        [(b"x" * CS, True), (b"y", True)],  # a chunk marked last that is not
    ],
)
def test_malformed_chunk_sequences(chunks: list[tuple[bytes, bool]]) -> None:
    with pytest.raises(DecryptionFailed):
        open_bytes(_seal(make_header(), chunks))


def test_header_without_body() -> None:
    with pytest.raises(DecryptionFailed):
        open_bytes(make_header().to_bytes())


DOC = protect(os.urandom(2 * CS + 100))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(DOC) * 8 - 1))
def test_a_flipped_bit_anywhere_fails_with_a_typed_error(bit: int) -> None:
    doc = bytearray(DOC)
    doc[bit // 8] ^= 1 << (bit % 8)
    out = io.BytesIO()
    with pytest.raises(KeysteadError) as info:
        open_stream(io.BytesIO(bytes(doc)), out, lambda _h: KEY)
    assert isinstance(info.value, FormatError | DecryptionFailed)
    if bit // 8 >= len(make_header().to_bytes()):
        assert isinstance(info.value, DecryptionFailed)
