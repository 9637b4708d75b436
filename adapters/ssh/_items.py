"""What the adapter keeps in the ``ssh`` collection (sealed by the core, synced to devices).

Two kinds of items, told apart by their id prefix:

- ``key:<hex>`` — an imported private key: ``{"v": 1, "private": OPENSSH-PEM,
  "comment": TEXT}``. The id is derived from the public key, so importing the
  same key twice overwrites rather than duplicates.
- ``host:<hex>`` — one known_hosts line: ``{"v": 1, "line": TEXT}``; the id is
  derived from the line (normalised), so the same line from two devices is one item.

Plaintexts are canonical JSON carrying a version; anything else is a ``FormatError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from keystead.core import FormatError, UnsupportedVersion, canonical_json, parse_json_object

from ._keys import AgentKey, load_private_key
from ._known_hosts import KnownHost, parse_known_hosts

__all__ = [
    "COLLECTION",
    "HOST_PREFIX",
    "KEY_PREFIX",
    "ImportedKey",
    "decode_host",
    "decode_key",
    "encode_host",
    "encode_key",
    "host_item_id",
    "key_item_id",
]

COLLECTION = "ssh"
KEY_PREFIX = "key:"
HOST_PREFIX = "host:"
VERSION = 1


@dataclass(frozen=True)
class ImportedKey:
    """An imported private key as stored: its item id and the loaded key."""

    item_id: str
    key: AgentKey


def key_item_id(key: AgentKey) -> str:
    return KEY_PREFIX + hashlib.sha256(key.public_blob).hexdigest()[:32]


def encode_key(key: AgentKey) -> bytes:
    return canonical_json(
        {"v": VERSION, "private": key.private_openssh().decode(), "comment": key.comment}
    )


def _body(plaintext: bytes, fields: set[str]) -> dict[str, object]:
    obj = parse_json_object(plaintext, what="ssh item")
    if obj.get("v") != VERSION:
        raise UnsupportedVersion(f"ssh item version {obj.get('v')!r}")
    if set(obj) != fields | {"v"} or not all(isinstance(obj[f], str) for f in fields):
        raise FormatError("ssh item: unexpected fields")
    return obj


def decode_key(item_id: str, plaintext: bytes) -> ImportedKey:
    obj = _body(plaintext, {"private", "comment"})
    key = load_private_key(str(obj["private"]).encode(), None, str(obj["comment"]))
    if key_item_id(key) != item_id:
        raise FormatError("ssh item: the key does not match its id")
    return ImportedKey(item_id, key)


def _normal(line: str) -> str:
    return " ".join(line.split())


def host_item_id(line: str) -> str:
    return HOST_PREFIX + hashlib.sha256(_normal(line).encode()).hexdigest()[:32]


def encode_host(entry: KnownHost) -> bytes:
    return canonical_json({"v": VERSION, "line": _normal(entry.line)})


def decode_host(item_id: str, plaintext: bytes) -> KnownHost:
    obj = _body(plaintext, {"line"})
    line = str(obj["line"])
    entries = parse_known_hosts(line)
    if len(entries) != 1 or host_item_id(line) != item_id:
        raise FormatError("ssh item: not one known_hosts line matching its id")
    return entries[0]
