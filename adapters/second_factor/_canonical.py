"""Canonical JSON and strict base64url for the confirmation formats.

Prompts and answers are JSON limited to objects, arrays, strings, integers,
booleans and null, with ASCII keys; for that subset Python's sorted, compact
encoding *is* RFC 8785. Parsing re-encodes and demands identical bytes, so one
value has exactly one spelling and a digest or signature over it cannot be
dodged by reformatting.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from keystead.core.errors import FormatError

__all__ = ["b64url_decode", "b64url_encode", "canonical_json", "parse_canonical_json"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_MAX_INT = 2**53 - 1  # larger integers do not survive JavaScript or RFC 8785


def _check(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise FormatError("integer out of range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise FormatError("object keys must be ASCII strings")
            _check(item)
        return
    raise FormatError(f"{type(value).__name__} is not allowed in canonical JSON")


def canonical_json(value: dict[str, Any]) -> bytes:
    """Encode ``value`` in the one canonical form."""
    _check(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormatError("duplicate key")
        result[key] = value
    return result


def _no_floats(text: str) -> Any:
    raise FormatError("numbers must be integers")


def parse_canonical_json(data: bytes, max_size: int) -> dict[str, Any]:
    """Parse bytes that must be a canonical JSON object no larger than ``max_size``."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("expected bytes")
    if len(data) > max_size:
        raise FormatError("too large")
    try:
        value = json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_floats,
            parse_constant=_no_floats,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError("not JSON") from e
    if not isinstance(value, dict):
        raise FormatError("not a JSON object")
    if canonical_json(value) != data:
        raise FormatError("not in canonical form")
    return value


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_decode(text: str, length: int | None = None) -> bytes:
    """Decode unpadded base64url, refusing any other spelling (and a wrong length)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise FormatError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise FormatError("not base64url") from e
    if b64url_encode(raw) != text:
        raise FormatError("not canonical base64url")
    if length is not None and len(raw) != length:
        raise FormatError(f"expected {length} bytes")
    return raw
