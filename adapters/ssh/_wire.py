"""Strict reader and writers for the SSH wire encoding (RFC 4251 section 5).

Everything the agent reads comes from another process, so every length is
checked against what is left and leftover bytes are an error, not ignored.
"""

from __future__ import annotations

import struct

from keystead.core.errors import FormatError

__all__ = ["Reader", "boolean", "mpint", "string", "uint32"]

_U32 = struct.Struct(">I")


class Reader:
    """Reads SSH wire values from one buffer; raises ``FormatError`` on any overrun."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self._data) - self._pos

    def _take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise FormatError("truncated SSH wire data")
        start = self._pos
        self._pos += n
        return self._data[start : self._pos]

    def byte(self) -> int:
        """One unsigned byte."""
        return self._take(1)[0]

    def boolean(self) -> bool:
        """An SSH boolean; only 0 and 1 are accepted."""
        value = self.byte()
        if value > 1:
            raise FormatError("SSH boolean is neither 0 nor 1")
        return value == 1

    def uint32(self) -> int:
        """A big-endian 32-bit unsigned integer."""
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def string(self) -> bytes:
        """A length-prefixed byte string."""
        return self._take(self.uint32())

    def text(self) -> str:
        """A length-prefixed UTF-8 string."""
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError("SSH string is not UTF-8") from e

    def mpint(self) -> int:
        """A non-negative multiple-precision integer in minimal two's complement."""
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise FormatError("negative SSH mpint")
        if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
            raise FormatError("SSH mpint is not minimally encoded")
        return int.from_bytes(raw, "big")

    def rest(self) -> bytes:
        """Everything not yet read."""
        return self._take(self.remaining)

    def end(self) -> None:
        """Require that the buffer is used up: trailing garbage is an error."""
        if self.remaining:
            raise FormatError("trailing bytes after SSH wire data")


def uint32(value: int) -> bytes:
    """Encode a 32-bit unsigned integer."""
    return _U32.pack(value)


def string(value: bytes | str) -> bytes:
    """Encode a length-prefixed string (``str`` is encoded as UTF-8)."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return _U32.pack(len(raw)) + raw


def boolean(value: bool) -> bytes:
    """Encode an SSH boolean."""
    return b"\x01" if value else b"\x00"


def mpint(value: int) -> bytes:
    """Encode a non-negative mpint."""
    if value < 0:
        raise ValueError("negative mpint")
    if value == 0:
        return string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")
    return string(raw)
