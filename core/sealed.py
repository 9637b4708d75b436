"""The sealed-key record: a small secret sealed to one epoch of an account's collection.

Adapters hand these around as opaque bytes (a document header, a message, a
confirmation prompt); only the core opens them. The record names its owner
account, the collection ("key") and the epoch whose public key it was sealed
to, so nobody slices capsules by hand and a reader knows which grant to use.
Format (canonical JSON, version 2)::

    {"v": 2, "owner": ACCOUNT, "key": COLLECTION, "epoch": N,
     "capsule": B64(105 bytes), "ciphertext": B64}
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _umbral
from ._encoding import b64d, b64e, canonical_json, parse_json_object
from ._umbral import CAPSULE_SIZE
from .chain import ChainState, check_collection, check_name
from .errors import FormatError, UnsupportedVersion

__all__ = ["MAX_SEALED_PLAINTEXT", "SealedKey", "seal_key"]

VERSION = 2
MAX_SEALED_PLAINTEXT = 64 * 1024
_FIELDS = {"v", "owner", "key", "epoch", "capsule", "ciphertext"}


@dataclass(frozen=True)
class SealedKey:
    """A secret sealed to epoch ``epoch`` of ``owner``'s collection ``key``."""

    owner: str
    key: str
    epoch: int
    capsule: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "v": VERSION,
                "owner": self.owner,
                "key": self.key,
                "epoch": self.epoch,
                "capsule": b64e(self.capsule),
                "ciphertext": b64e(self.ciphertext),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> SealedKey:
        if len(raw) > 2 * MAX_SEALED_PLAINTEXT:
            raise FormatError("sealed key record too large")
        obj = parse_json_object(raw, what="sealed key record")
        if obj.get("v") != VERSION:
            raise UnsupportedVersion(
                f"sealed key record of version {obj.get('v')!r}; this Keystead reads "
                f"version {VERSION}"
            )
        if set(obj) != _FIELDS:
            raise FormatError("sealed key record: unexpected fields")
        epoch = obj["epoch"]
        if type(epoch) is not int or epoch < 1:
            raise FormatError("sealed key record: epoch must be a positive integer")
        ct = b64d(obj["ciphertext"], what="sealed key ciphertext")
        if not 40 <= len(ct) <= MAX_SEALED_PLAINTEXT + 40:
            raise FormatError("sealed key record: impossible ciphertext length")
        return cls(
            check_name(obj["owner"], "account name"),
            check_collection(obj["key"]),
            epoch,
            b64d(obj["capsule"], size=CAPSULE_SIZE, what="capsule"),
            ct,
        )


def seal_key(chain: ChainState, key: str, plaintext: bytes) -> SealedKey:
    """Seal ``plaintext`` to the current epoch of ``key`` in the verified ``chain``."""
    if len(plaintext) > MAX_SEALED_PLAINTEXT:
        raise FormatError("a sealed key holds 64 KiB at most")
    coll = chain.collection(key)
    capsule, ct = _umbral.encrypt(coll.public_key, plaintext)
    return SealedKey(chain.account, key, coll.current_epoch, capsule, ct)
