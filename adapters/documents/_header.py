"""The header of a ``.kst`` document: what to ask which service for, and how the body is cut.

The header is not signed or MAC'd on its own: its SHA-256 is the salt of the
body's key derivation, so the first body chunk authenticates every header byte.
Until then (``doc info``) its fields are claims, not facts. Parsing is strict:
fixed field order, exact lengths, bounded sizes, one encoding per header.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from keystead.core.address import Address
from keystead.core.errors import FormatError, UnsupportedVersion

from ._labels import MAGIC_PREFIX, MAGIC_V2

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DOCUMENT_ID_SIZE",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "NONCE_PREFIX_SIZE",
    "Header",
    "read_header",
]

DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 1024 * 1024
DOCUMENT_ID_SIZE = 16
NONCE_PREFIX_SIZE = 7

_MAX_OWNER = 255
_MAX_LABEL = 255
_MAX_URL = 2048
_MAX_OPAQUE = 2048  # the sealed-key record of the data key
_MAX_BODY = 8192  # comfortably above the sum of the field limits (4649)

_URL_RE = re.compile(r"https?://[\x21-\x7e]+")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _check_owner(owner: str) -> None:
    """The core's one address grammar (``keystead.core.address``), in its one spelling."""
    try:
        ok = (
            isinstance(owner, str)
            and len(owner) <= _MAX_OWNER
            and str(Address.parse(owner)) == owner
        )
    except FormatError:
        ok = False
    if not ok:
        raise FormatError("document owner is not an account name@host[:port]")


def _check_label(label: str) -> None:
    # Control and format characters (bidi overrides...) could spoof what `doc info` shows.
    if (
        not isinstance(label, str)
        or not 1 <= len(label.encode()) <= _MAX_LABEL
        or any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in label)
    ):
        raise FormatError("document label must be 1-255 bytes of printable UTF-8")


def _check_bytes(name: str, value: bytes, low: int, high: int) -> None:
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        size = str(low) if low == high else f"{low}-{high}"
        raise FormatError(f"document {name} must be {size} bytes")


@dataclass(frozen=True)
class Header:
    """A validated document header; ``to_bytes()`` is its only encoding."""

    owner: str  #: the label key's account, ``name@host[:port]``
    label: str  #: which of the owner's label keys the data key is encrypted to
    service_url: str  #: where to ask for re-encryption (the owner's service)
    document_id: bytes  #: 16 random bytes naming this document in grants and audit
    created: int  #: seconds since the Unix epoch, as the protecting device saw it
    sealed_key: bytes  #: the data key as a core sealed-key record (owner, label key, epoch)
    chunk_size: int  #: plaintext bytes per body chunk
    nonce_prefix: bytes  #: first bytes of every chunk nonce
    _raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_owner(self.owner)
        _check_label(self.label)
        if not isinstance(self.service_url, str) or not (
            len(self.service_url) <= _MAX_URL and _URL_RE.fullmatch(self.service_url)
        ):
            raise FormatError("document service URL must be an http(s) URL of printable ASCII")
        _check_bytes("id", self.document_id, DOCUMENT_ID_SIZE, DOCUMENT_ID_SIZE)
        _check_bytes("nonce prefix", self.nonce_prefix, NONCE_PREFIX_SIZE, NONCE_PREFIX_SIZE)
        _check_bytes("sealed key", self.sealed_key, 1, _MAX_OPAQUE)
        if type(self.created) is not int or not 0 <= self.created < 2**64:
            raise FormatError("document creation time must be a 64-bit count of seconds")
        cs = self.chunk_size
        if type(cs) is not int or cs & (cs - 1) or not MIN_CHUNK_SIZE <= cs <= MAX_CHUNK_SIZE:
            raise FormatError("document chunk size must be a power of two from 4 KiB to 1 MiB")
        object.__setattr__(self, "_raw", self._encode())

    @classmethod
    def new(
        cls,
        *,
        owner: str,
        label: str,
        service_url: str,
        sealed_key: bytes,
        created: int | None = None,
        document_id: bytes | None = None,
        nonce_prefix: bytes | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Header:
        """A header for a new document; id, nonce prefix and time are fresh unless given."""
        return cls(
            owner=owner,
            label=label,
            service_url=service_url,
            document_id=os.urandom(DOCUMENT_ID_SIZE) if document_id is None else document_id,
            created=int(datetime.now(UTC).timestamp()) if created is None else created,
            sealed_key=sealed_key,
            chunk_size=chunk_size,
            nonce_prefix=os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else nonce_prefix,
        )

    def _encode(self) -> bytes:
        owner, label, url = self.owner.encode(), self.label.encode(), self.service_url.encode()
        body = b"".join(
            [
                struct.pack(">B", len(owner)),
                owner,
                struct.pack(">B", len(label)),
                label,
                struct.pack(">H", len(url)),
                url,
                self.document_id,
                struct.pack(">QI", self.created, self.chunk_size),
                self.nonce_prefix,
                struct.pack(">H", len(self.sealed_key)),
                self.sealed_key,
            ]
        )
        return MAGIC_V2 + struct.pack(">H", len(body)) + body

    def to_bytes(self) -> bytes:
        """The exact header bytes that start the document."""
        return self._raw

    @property
    def digest(self) -> bytes:
        """SHA-256 of the header bytes: the salt that binds the header to the body key."""
        return hashlib.sha256(self._raw).digest()

    @property
    def created_at(self) -> datetime:
        """The creation time as an aware UTC datetime (for display)."""
        return datetime.fromtimestamp(self.created, UTC)

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse exactly one header, nothing before or after it."""
        _check_magic(data[: len(MAGIC_V2)])
        r = _Reader(data, len(MAGIC_V2))
        if r.int(">H") != len(data) - r.pos:
            raise FormatError("document header length does not match")
        owner, label = r.text(">B"), r.text(">B")
        url = r.text(">H")
        document_id = r.take(DOCUMENT_ID_SIZE)
        created, chunk_size = r.int(">Q"), r.int(">I")
        nonce_prefix = r.take(NONCE_PREFIX_SIZE)
        sealed_key = r.take(r.int(">H"))
        if r.pos != len(data):
            raise FormatError("unexpected bytes at the end of the document header")
        header = cls(
            owner=owner,
            label=label,
            service_url=url,
            document_id=document_id,
            created=created,
            sealed_key=sealed_key,
            chunk_size=chunk_size,
            nonce_prefix=nonce_prefix,
        )
        if header.to_bytes() != data:  # cannot happen with the checks above; fail closed anyway
            raise FormatError("document header is not in canonical form")
        return header


class _Reader:
    """Bounds-checked cursor over header bytes; every overrun is a ``FormatError``."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError("document header is truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def int(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(value)

    def text(self, length_fmt: str) -> str:
        try:
            return self.take(self.int(length_fmt)).decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            raise FormatError("document header text is not UTF-8") from e


def _check_magic(first: bytes) -> None:
    if first == MAGIC_V2:
        return
    n = min(len(first), len(MAGIC_PREFIX))
    if not first or first[:n] != MAGIC_PREFIX[:n]:
        raise FormatError("not a Keystead document")
    if len(first) < len(MAGIC_PREFIX) or MAGIC_V2.startswith(first):
        raise FormatError("document is truncated")
    found = first[len(MAGIC_PREFIX) :].split(b"\n")[0].decode("ascii", "replace")
    raise UnsupportedVersion(
        f"a Keystead document of version {found}; this Keystead reads version 2"
    )


def _read_exact(src: BinaryIO, n: int) -> bytes:
    parts, remaining = [], n
    while remaining:
        part = src.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def read_header(src: BinaryIO) -> Header:
    """Read and parse the header, leaving ``src`` at the first body byte. Decrypts nothing."""
    first = _read_exact(src, len(MAGIC_V2))
    _check_magic(first)
    length_bytes = _read_exact(src, 2)
    if len(length_bytes) != 2:
        raise FormatError("document header is truncated")
    (length,) = struct.unpack(">H", length_bytes)
    if length > _MAX_BODY:
        raise FormatError("document header is too large")
    body = _read_exact(src, length)
    if len(body) != length:
        raise FormatError("document header is truncated")
    return Header.from_bytes(first + length_bytes + body)
