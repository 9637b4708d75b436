"""Strict encodings: canonical JSON for signed data, unpadded URL-safe base64.

Canonical JSON follows RFC 8785 for the values Keystead signs: objects with
string keys, strings, integers (within 2**53), booleans, null and lists.
Floats are refused rather than canonicalized: nothing signed needs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .errors import FormatError

__all__ = ["b64d", "b64e", "canonical_json", "parse_json_object"]

_MAX_SAFE_INT = 2**53 - 1
MAX_INT_DIGITS = 20
"""A JSON integer longer than this (sign included) is refused before it is converted."""
MAX_DEPTH = 32
"""Objects and lists nested deeper than this are refused."""
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    """Unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: object, *, size: int | None = None, what: str = "value") -> bytes:
    """Decode unpadded URL-safe base64 strictly (no padding, no whitespace, canonical)."""
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected base64 text")
    if not _B64URL.fullmatch(text):
        raise FormatError(f"{what}: not canonical base64")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise FormatError(f"{what}: invalid base64") from e
    if b64e(raw) != text:
        raise FormatError(f"{what}: not canonical base64")
    if size is not None and len(raw) != size:
        raise FormatError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def _check(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise FormatError("JSON nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise FormatError("integer out of range for canonical JSON")
        return
    if isinstance(value, list):
        for v in value:
            _check(v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise FormatError("JSON object keys must be strings")
            _check(v, depth + 1)
        return
    raise FormatError(f"cannot canonicalize {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes (for signing and hashing)."""
    _check(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_floats(text: str) -> Any:
    raise FormatError("floating point numbers are not accepted")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise FormatError("integer too long")
    return int(text)


def _check_depth(value: Any, what: str) -> None:
    """Iterative (no recursion of our own), and only over containers."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormatError(f"{what}: JSON nested too deeply")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def parse_json_object(data: bytes, *, what: str = "document") -> dict[str, Any]:
    """Parse JSON bytes into an object strictly: UTF-8, no duplicate keys, no floats."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_dupes,
            parse_float=_no_floats,
            parse_constant=_no_floats,
            parse_int=_bounded_int,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"{what}: not valid JSON") from e
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a JSON object")
    _check_depth(value, what)
    return value
