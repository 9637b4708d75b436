"""The body of a document: a chunked AEAD stream (age's STREAM, with our own labels).

This is the only module of the adapter that touches raw primitives (AES-256-GCM,
HKDF). Each chunk is sealed under a nonce ``prefix(7) || counter(4, BE) ||
last(1)``: reordering, duplicating or dropping chunks changes a nonce, and a
stream cut at a chunk boundary lacks the chunk sealed with ``last = 1``. The
key is derived from the data key salted with the header's hash, so the first
chunk also authenticates the header. Memory is two chunk buffers plus one
output buffer, whatever the size of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from keystead.core.errors import DecryptionFailed

from ._header import NONCE_PREFIX_SIZE
from ._labels import PAYLOAD_KEY_LABEL

__all__ = ["DATA_KEY_SIZE", "TAG_SIZE", "Progress", "open_chunks", "payload_key", "seal_chunks"]

DATA_KEY_SIZE = 32
TAG_SIZE = 16
_MAX_CHUNKS = 2**32  # the counter is 4 bytes; 256 TiB at 64 KiB chunks

#: Called with the number of input bytes consumed since the previous call.
Progress = Callable[[int], None]


def payload_key(data_key: bytes, header_digest: bytes) -> bytes:
    """The body key: HKDF-SHA256(ikm=data key, salt=header digest, info=purpose label)."""
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError("a document data key is 32 bytes")
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=header_digest, info=PAYLOAD_KEY_LABEL)
    return hkdf.derive(data_key)


class _Nonces:
    """Builds the 12-byte nonce of chunk ``i`` in one preallocated buffer."""

    def __init__(self, prefix: bytes) -> None:
        if len(prefix) != NONCE_PREFIX_SIZE:
            raise ValueError("nonce prefix must be 7 bytes")
        self._buf = bytearray(prefix + bytes(5))

    def get(self, counter: int, last: bool) -> bytes:
        self._buf[7:11] = counter.to_bytes(4, "big")
        self._buf[11] = 1 if last else 0
        return bytes(self._buf)


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read until ``view`` is full or the source ends; short reads from pipes are normal."""
    got = 0
    while got < len(view):
        n = src.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def _write_all(dst: BinaryIO, view: memoryview) -> None:
    written = dst.write(view)
    while written is not None and written < len(view):  # raw files may write partially
        view = view[written:]
        written = dst.write(view)


def seal_chunks(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes,
    nonce_prefix: bytes,
    chunk_size: int,
    progress: Progress | None = None,
) -> int:
    """Encrypt all of ``src`` into ``dst`` as a chunk stream; return the plaintext size."""
    aead, nonces = AESGCM(key), _Nonces(nonce_prefix)
    cur, nxt = memoryview(bytearray(chunk_size)), memoryview(bytearray(chunk_size))
    out = memoryview(bytearray(chunk_size + TAG_SIZE))
    n, counter, total = _fill(src, cur), 0, 0
    while True:
        # Read one chunk ahead: a full chunk is the last one only if nothing follows it.
        m = _fill(src, nxt) if n == chunk_size else 0
        last = m == 0
        aead.encrypt_into(nonces.get(counter, last), cur[:n], None, out[: n + TAG_SIZE])
        _write_all(dst, out[: n + TAG_SIZE])
        total += n
        if progress is not None:
            progress(n)
        if last:
            return total
        counter += 1
        if counter >= _MAX_CHUNKS:
            raise ValueError("document too large for one stream")
        cur, nxt, n = nxt, cur, m


def open_chunks(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes,
    nonce_prefix: bytes,
    chunk_size: int,
    progress: Progress | None = None,
) -> int:
    """Decrypt a chunk stream from ``src`` into ``dst``; return the plaintext size.

    Each chunk is written only after it authenticates, but a stream is whole
    only when this returns: callers that must not release a truncated document
    write to a temporary file (``open_to_path``).
    """
    aead, nonces = AESGCM(key), _Nonces(nonce_prefix)
    enc_size = chunk_size + TAG_SIZE
    cur, nxt = memoryview(bytearray(enc_size)), memoryview(bytearray(enc_size))
    out = memoryview(bytearray(chunk_size))
    n, counter, total = _fill(src, cur), 0, 0
    while True:
        m = _fill(src, nxt) if n == enc_size else 0
        last = m == 0
        size = n - TAG_SIZE
        # No chunk at all, or an empty last chunk after others: the encoder never writes these.
        if size < 0 or (last and size == 0 and counter > 0):
            raise DecryptionFailed()
        try:
            aead.decrypt_into(nonces.get(counter, last), cur[:n], None, out[:size])
        except InvalidTag as e:
            raise DecryptionFailed() from e
        _write_all(dst, out[:size])
        total += size
        if progress is not None:
            progress(n)
        if last:
            return total
        counter += 1
        if counter >= _MAX_CHUNKS:
            raise DecryptionFailed()
        cur, nxt, n = nxt, cur, m
