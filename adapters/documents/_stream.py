"""The body of a document: a chunked AEAD stream (age's STREAM, with our own labels).

This is the only module of the adapter that touches raw primitives (AES-256-GCM,
HKDF). Each chunk is sealed under a nonce ``prefix(7) || counter(4, BE) ||
last(1)``: reordering, duplicating or dropping chunks changes a nonce, and a
stream cut at a chunk boundary lacks the chunk sealed with ``last = 1``. The
key is derived from the data key salted with the header's hash, so the first
chunk also authenticates the header. Chunks move in batches of about 1 MiB:
two input batches (one read ahead, to know which chunk is last) and at most
three output batches, whatever the size of the file.
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
from ._pipe import BatchWriter, fill

__all__ = ["DATA_KEY_SIZE", "TAG_SIZE", "Progress", "open_chunks", "payload_key", "seal_chunks"]

DATA_KEY_SIZE = 32
TAG_SIZE = 16
_MAX_CHUNKS = 2**32  # the counter is 4 bytes; 256 TiB at 64 KiB chunks
_BATCH_BYTES = 1024 * 1024

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


def _batch_chunks(chunk_size: int) -> int:
    """Chunks per I/O batch: about 1 MiB, so threads hand off rarely."""
    return max(1, _BATCH_BYTES // chunk_size)


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
    k = _batch_chunks(chunk_size)
    batch = k * chunk_size
    cur, nxt = memoryview(bytearray(batch)), memoryview(bytearray(batch))
    n, counter, total = fill(src, cur), 0, 0
    with BatchWriter(dst, k * (chunk_size + TAG_SIZE)) as writer:
        while True:
            # Read one batch ahead: a full batch ends the stream only if nothing follows it.
            m = fill(src, nxt) if n == batch else 0
            out, pos, opos = writer.buffer(), 0, 0
            while True:  # at least once: an empty stream is one empty last chunk
                size = min(chunk_size, n - pos)
                last = m == 0 and pos + size == n
                end = opos + size + TAG_SIZE
                aead.encrypt_into(
                    nonces.get(counter, last), cur[pos : pos + size], None, out[opos:end]
                )
                pos, opos = pos + size, end
                if last or pos == n:
                    break
                counter += 1
            writer.put(out, opos, more=m > 0)
            total += n
            if progress is not None:
                progress(n)
            if m == 0:
                return total
            counter += 1
            if counter + k >= _MAX_CHUNKS:
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
    k, enc_size = _batch_chunks(chunk_size), chunk_size + TAG_SIZE
    batch = k * enc_size
    cur, nxt = memoryview(bytearray(batch)), memoryview(bytearray(batch))
    n, counter, total = fill(src, cur), 0, 0
    with BatchWriter(dst, k * chunk_size) as writer:
        while True:
            m = fill(src, nxt) if n == batch else 0
            out, pos, opos = writer.buffer(), 0, 0
            while True:
                enc = min(enc_size, n - pos)
                last = m == 0 and pos + enc == n
                size = enc - TAG_SIZE
                # No chunk at all, or an empty last chunk after others: the encoder writes neither.
                if size < 0 or (last and size == 0 and counter > 0):
                    raise DecryptionFailed()
                try:
                    nonce = nonces.get(counter, last)
                    aead.decrypt_into(nonce, cur[pos : pos + enc], None, out[opos : opos + size])
                except InvalidTag as e:
                    raise DecryptionFailed() from e
                pos, opos = pos + enc, opos + size
                if last:
                    break
                counter += 1
                if pos == n:
                    break
            writer.put(out, opos, more=m > 0)
            total += opos
            if progress is not None:
                progress(n)
            if m == 0:
                return total
            if counter + k >= _MAX_CHUNKS:
                raise DecryptionFailed()
            cur, nxt, n = nxt, cur, m
