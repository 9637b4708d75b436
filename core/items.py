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
from dataclasses import dataclass
from typing import Any

from . import labels
from ._encoding import b64d, b64e
from .crypto import SigningKey, VerifyKey, open_sealed, seal
from .errors import DecryptionFailed, FormatError

__all__ = ["SealedItem", "check_item_id", "item_message", "open_item", "seal_item"]

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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "epoch": self.epoch,
                "ciphertext": b64e(self.ciphertext), "deleted": self.deleted, "seq": self.seq,
                "writer": self.writer, "sig": b64e(self.signature)}

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
        return cls(check_item_id(obj.get("id", "")), version, epoch, ct, deleted, seq, writer,
                   sig)

    def verify(self, key: VerifyKey, *, account: str, collection: str) -> None:
        """``InvalidSignature`` unless ``key`` (the writer's) signed these sealed bytes."""
        key.verify(labels.ITEM_SIGNATURE, item_message(account, collection, self), self.signature)


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if type(value) is not int:
        raise FormatError("item: version, epoch and seq must be integers")
    return value


MIN_CIPHERTEXT = 12 + 16  # nonce and tag: an empty plaintext
_WRITER_RE = re.compile(r"^[0-9a-f]{16}$")


def _ad(account: str, collection: str, item_id: str, version: int, epoch: int,
        deleted: bool, writer: str) -> bytes:
    # Names are validated to exclude NUL, so NUL-separated fields are unambiguous.
    return b"\x00".join((labels.ITEM_AD, account.encode(), collection.encode(),
                         item_id.encode(), _FIXED.pack(version, epoch, deleted),
                         writer.encode()))


_FIXED = struct.Struct(">QQ?")


def item_message(account: str, collection: str, item: SealedItem) -> bytes:
    """What the writer signs: the associated data and the SHA-256 of the ciphertext."""
    return _ad(account, collection, item.id, item.version, item.epoch, item.deleted,
               item.writer) + b"\x00" + hashlib.sha256(item.ciphertext).digest()


def seal_item(epoch_key: bytes, *, account: str, collection: str, item_id: str, version: int,
              epoch: int, plaintext: bytes, writer: str, signer: SigningKey,
              deleted: bool = False) -> SealedItem:
    """Encrypt ``plaintext`` as version ``version`` of ``item_id``, signed by its writer."""
    check_item_id(item_id)
    if len(plaintext) > MAX_ITEM_BYTES - 64:
        raise FormatError("item too large (1 MiB at most)")
    ct = seal(epoch_key, plaintext,
              _ad(account, collection, item_id, version, epoch, deleted, writer))
    unsigned = SealedItem(item_id, version, epoch, ct, deleted, 0, writer)
    sig = signer.sign(labels.ITEM_SIGNATURE, item_message(account, collection, unsigned))
    return SealedItem(item_id, version, epoch, ct, deleted, 0, writer, sig)


def open_item(epoch_key: bytes, *, account: str, collection: str, item: SealedItem) -> bytes:
    """Decrypt an item; ``DecryptionFailed`` if it was altered, moved or replayed."""
    try:
        return open_sealed(epoch_key, item.ciphertext,
                           _ad(account, collection, item.id, item.version, item.epoch,
                               item.deleted, item.writer))
    except DecryptionFailed:
        raise DecryptionFailed(f"item {item.id} in {collection} failed to decrypt") from None
