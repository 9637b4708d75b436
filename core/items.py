"""Items: the encrypted, versioned records of a collection.

An item is sealed with its collection's epoch data key. The associated data
binds account, collection, item id, version, epoch, the deletion flag and the
writer device, so the service can neither move an item to another id,
collection or account, nor replay an older version as a newer one, without the
open failing. The writer signs the sealed bytes with its device key: readers
(and the service) check the signature against the chain, so every item names
who wrote it and a member cannot pass off its writes as an admin's.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import labels
from ._encoding import b64d, b64e
from .crypto import SigningKey, VerifyKey, open_sealed, seal
from .errors import DecryptionFailed, FormatError, InvalidSignature

__all__ = [
    "GROUP",
    "ItemVerifier",
    "SealedItem",
    "check_item_id",
    "item_message",
    "open_item",
    "seal_item",
    "sign_items",
]

_ID_RE = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")
MAX_ITEM_BYTES = 1024 * 1024


def check_item_id(item_id: str) -> str:
    if not isinstance(item_id, str) or not _ID_RE.match(item_id):
        raise FormatError(f"invalid item id {item_id!r}")
    return item_id


@dataclass(frozen=True)
class SealedItem:
    """An item as the service stores it. ``seq`` is the service's change counter."""

    id: str
    version: int
    epoch: int
    ciphertext: bytes
    deleted: bool = False
    seq: int = 0
    writer: str = ""
    signature: bytes = b""
    proof: bytes = b""
    """Where this item's leaf sits in the Merkle tree whose root the writer signed: its index
    and the tree's size (2 bytes each, big-endian), then the sibling hashes from the leaf up
    (none for a tree of one)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "epoch": self.epoch,
            "ciphertext": b64e(self.ciphertext),
            "deleted": self.deleted,
            "seq": self.seq,
            "writer": self.writer,
            "sig": b64e(self.signature),
            "proof": b64e(self.proof),
        }

    @classmethod
    def from_json(cls, obj: Any) -> SealedItem:
        if not isinstance(obj, dict):
            raise FormatError("item: expected an object")
        version, epoch, seq = _int(obj, "version"), _int(obj, "epoch"), _int(obj, "seq", 0)
        deleted = obj.get("deleted", False)
        if version < 1 or epoch < 1 or not isinstance(deleted, bool) or seq < 0:
            raise FormatError("item: version and epoch start at 1")
        ct = b64d(obj.get("ciphertext"), what="item ciphertext")
        if not MIN_CIPHERTEXT <= len(ct) <= MAX_ITEM_BYTES:
            raise FormatError("item ciphertext has an impossible length")
        writer = obj.get("writer")
        if not isinstance(writer, str) or not _WRITER_RE.match(writer):
            raise FormatError("item: writer must be a device id")
        sig = b64d(obj.get("sig"), size=64, what="item signature")
        proof = b64d(obj.get("proof"), what="item proof")
        if len(proof) < 4 or (len(proof) - 4) % 32 or len(proof) > 4 + 32 * _MAX_DEPTH:
            raise FormatError("item: malformed Merkle proof")
        return cls(
            check_item_id(obj.get("id", "")), version, epoch, ct, deleted, seq, writer, sig, proof
        )


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if type(value) is not int:
        raise FormatError("item: version, epoch and seq must be integers")
    return value


MIN_CIPHERTEXT = 12 + 16  # nonce and tag: an empty plaintext
_WRITER_RE = re.compile(r"^[0-9a-f]{16}$")


def _ad(
    account: str,
    collection: str,
    item_id: str,
    version: int,
    epoch: int,
    deleted: bool,
    writer: str,
) -> bytes:
    # Names are validated to exclude NUL, so NUL-separated fields are unambiguous.
    return b"\x00".join(
        (
            labels.ITEM_AD,
            account.encode(),
            collection.encode(),
            item_id.encode(),
            _FIXED.pack(version, epoch, deleted),
            writer.encode(),
        )
    )


_FIXED = struct.Struct(">QQ?")


def item_message(account: str, collection: str, item: SealedItem) -> bytes:
    """What the writer signs: the associated data and the SHA-256 of the ciphertext."""
    return (
        _ad(account, collection, item.id, item.version, item.epoch, item.deleted, item.writer)
        + b"\x00"
        + hashlib.sha256(item.ciphertext).digest()
    )


def seal_item(
    epoch_key: bytes,
    *,
    account: str,
    collection: str,
    item_id: str,
    version: int,
    epoch: int,
    plaintext: bytes,
    writer: str,
    deleted: bool = False,
) -> SealedItem:
    """Encrypt ``plaintext`` as version ``version`` of ``item_id`` by ``writer``; unsigned until
    :func:`sign_items` signs it with the others of its write."""
    check_item_id(item_id)
    if len(plaintext) > MAX_ITEM_BYTES - 64:
        raise FormatError("item too large (1 MiB at most)")
    ct = seal(
        epoch_key, plaintext, _ad(account, collection, item_id, version, epoch, deleted, writer)
    )
    return SealedItem(item_id, version, epoch, ct, deleted, 0, writer)


# One signature covers up to 2^_MAX_DEPTH items of one write: a reader or the service verifies
# one Ed25519 signature per group (the slow part of reading 10,000 new items), then a few hashes
# per item. Each item stays self-contained: it carries the signature and its path to the root.
_MAX_DEPTH = 8
GROUP = 1 << _MAX_DEPTH


def _leaf(account: str, collection: str, item: SealedItem) -> bytes:
    return hashlib.sha256(b"\x00" + item_message(account, collection, item)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """The tree, leaves first; an odd node at the end of a level is promoted unchanged."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        levels.append(
            [
                _node(cur[i], cur[i + 1]) if i + 1 < len(cur) else cur[i]
                for i in range(0, len(cur), 2)
            ]
        )
    return levels


def sign_items(
    signer: SigningKey, *, account: str, collection: str, items: Sequence[SealedItem]
) -> list[SealedItem]:
    """Sign the items of one write, in groups of at most :data:`GROUP` under one signature."""
    out: list[SealedItem] = []
    for start in range(0, len(items), GROUP):
        group = list(items[start : start + GROUP])
        levels = _levels([_leaf(account, collection, i) for i in group])
        sig = signer.sign(labels.ITEM_SIGNATURE, levels[-1][0])
        for index, item in enumerate(group):
            path, pos = b"", index
            for level in levels[:-1]:
                if pos ^ 1 < len(level):
                    path += level[pos ^ 1]
                pos //= 2
            proof = struct.pack(">HH", index, len(group)) + path
            out.append(replace(item, signature=sig, proof=proof))
    return out


def _root(leaf: bytes, proof: bytes) -> bytes:
    """Walk the proof up from the leaf: at each level the index says on which side the
    sibling sits, and the level's width whether there is one (a last odd node goes up as is)."""
    index, size = struct.unpack(">HH", proof[:4])
    if not index < size <= GROUP:
        raise InvalidSignature()
    node, k = leaf, 4
    while size > 1:
        if index ^ 1 < size:
            if k + 32 > len(proof):
                raise InvalidSignature()
            sibling = proof[k : k + 32]
            k += 32
            node = _node(sibling, node) if index & 1 else _node(node, sibling)
        index, size = index // 2, (size + 1) // 2
    if k != len(proof):
        raise InvalidSignature()
    return node


class ItemVerifier:
    """Checks items' writer signatures, verifying each signed root once."""

    def __init__(self) -> None:
        self._seen: set[tuple[bytes, bytes, bytes]] = set()

    def verify(self, item: SealedItem, key: VerifyKey, *, account: str, collection: str) -> None:
        """``InvalidSignature`` unless ``key`` (the writer's) signed this item's group."""
        if len(item.proof) < 4:
            raise InvalidSignature()
        root = _root(_leaf(account, collection, item), item.proof)
        seen = (key.raw, root, item.signature)
        if seen not in self._seen:
            key.verify(labels.ITEM_SIGNATURE, root, item.signature)
            self._seen.add(seen)


def open_item(epoch_key: bytes, *, account: str, collection: str, item: SealedItem) -> bytes:
    """Decrypt an item; ``DecryptionFailed`` if it was altered, moved or replayed."""
    try:
        return open_sealed(
            epoch_key,
            item.ciphertext,
            _ad(account, collection, item.id, item.version, item.epoch, item.deleted, item.writer),
        )
    except DecryptionFailed:
        raise DecryptionFailed(f"item {item.id} in {collection} failed to decrypt") from None
