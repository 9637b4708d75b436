"""Items: the encrypted, versioned records of a collection.

An item is sealed with its collection's epoch key. The associated data binds
account, collection, item id, version, epoch and the deletion flag, so the
service can neither move an item to another id, collection or account, nor
replay an older version as a newer one, without the open failing.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

from . import labels
from ._encoding import b64d, b64e
from .crypto import open_sealed, seal
from .errors import DecryptionFailed, FormatError

__all__ = ["SealedItem", "check_item_id", "open_item", "seal_item"]

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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "epoch": self.epoch,
                "ciphertext": b64e(self.ciphertext), "deleted": self.deleted, "seq": self.seq}

    @classmethod
    def from_json(cls, obj: Any) -> SealedItem:
        if not isinstance(obj, dict):
            raise FormatError("item: expected an object")
        version, epoch, seq = _int(obj, "version"), _int(obj, "epoch"), _int(obj, "seq", 0)
        deleted = obj.get("deleted", False)
        if version < 1 or epoch < 1 or not isinstance(deleted, bool):
            raise FormatError("item: version and epoch start at 1")
        ct = b64d(obj.get("ciphertext"), what="item ciphertext")
        if len(ct) > MAX_ITEM_BYTES:
            raise FormatError("item too large")
        return cls(check_item_id(obj.get("id", "")), version, epoch, ct, deleted, seq)


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if type(value) is not int:
        raise FormatError("item: version, epoch and seq must be integers")
    return value


def _ad(account: str, collection: str, item_id: str, version: int, epoch: int,
        deleted: bool) -> bytes:
    # Names are validated to exclude NUL, so NUL-separated fields are unambiguous.
    return b"\x00".join((labels.ITEM_AD, account.encode(), collection.encode(),
                         item_id.encode(), _FIXED.pack(version, epoch, deleted)))


_FIXED = struct.Struct(">QQ?")


def seal_item(epoch_key: bytes, *, account: str, collection: str, item_id: str, version: int,
              epoch: int, plaintext: bytes, deleted: bool = False) -> SealedItem:
    """Encrypt ``plaintext`` as version ``version`` of ``item_id``."""
    check_item_id(item_id)
    if len(plaintext) > MAX_ITEM_BYTES - 64:
        raise FormatError("item too large (1 MiB at most)")
    ct = seal(epoch_key, plaintext, _ad(account, collection, item_id, version, epoch, deleted))
    return SealedItem(item_id, version, epoch, ct, deleted)


def open_item(epoch_key: bytes, *, account: str, collection: str, item: SealedItem) -> bytes:
    """Decrypt an item; ``DecryptionFailed`` if it was altered, moved or replayed."""
    try:
        return open_sealed(epoch_key, item.ciphertext,
                           _ad(account, collection, item.id, item.version, item.epoch,
                               item.deleted))
    except DecryptionFailed:
        raise DecryptionFailed(f"item {item.id} in {collection} failed to decrypt") from None
