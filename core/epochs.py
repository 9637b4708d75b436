"""Epochs: a fresh Umbral key pair per epoch of a collection, and how one grant opens history.

Pure protocol logic, no I/O. An items collection's epoch *e* carries its data key
sealed to the epoch's own public key, and (from epoch 2 on) the previous epoch's
secret key wrapped under the new data key. A device granted only the newest
epoch therefore walks back through every older epoch without another grant, and
a device cut out at epoch *e* learns nothing of epoch *e+1*: its key pair is new,
and no kfrag to the removed device was ever made from it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from . import _umbral, labels
from ._encoding import b64e
from ._umbral import PRESecretKey
from .chain import CollectionInfo, EpochInfo
from .crypto import open_sealed, random_bytes, seal
from .errors import DecryptionFailed

__all__ = ["NewEpoch", "data_key", "new_epoch", "previous_secret", "walk_back"]


@dataclass(frozen=True)
class NewEpoch:
    """What an admin makes for a new epoch: the chain entry body and the secrets behind it."""

    body: dict[str, Any]
    secret: PRESecretKey
    data_key: bytes | None


def _previous_ad(account: str, collection: str, epoch: int) -> bytes:
    return b"\x00".join(
        (labels.EPOCH_PREVIOUS, account.encode(), collection.encode(), struct.pack(">Q", epoch))
    )


def new_epoch(
    account: str, coll: str, kind: str, epoch: int, previous: PRESecretKey | None
) -> NewEpoch:
    """Epoch ``epoch`` of ``coll``; ``previous`` is epoch ``epoch - 1``'s secret (items)."""
    sk = PRESecretKey.generate()
    body: dict[str, Any] = {
        "collection": coll,
        "epoch": epoch,
        "public_key": b64e(sk.public_key.raw),
    }
    if kind == "keys":
        return NewEpoch(body, sk, None)
    key = random_bytes(32)
    capsule, ct = _umbral.encrypt(sk.public_key, key)
    body.update(capsule=b64e(capsule), ciphertext=b64e(ct))
    if epoch > 1:
        if previous is None:
            raise ValueError("an items epoch after the first wraps the previous secret")
        body["previous"] = b64e(seal(key, previous.to_bytes(), _previous_ad(account, coll, epoch)))
    return NewEpoch(body, sk, key)


def data_key(secret: PRESecretKey, info: EpochInfo) -> bytes:
    """An items epoch's data key, with that epoch's secret key."""
    if info.capsule is None or info.ciphertext is None:
        raise DecryptionFailed()
    key = _umbral.decrypt(secret, info.capsule, info.ciphertext)
    if len(key) != 32:
        raise DecryptionFailed()
    return key


def previous_secret(account: str, coll: CollectionInfo, epoch: int, key: bytes) -> PRESecretKey:
    """Epoch ``epoch - 1``'s secret key, unwrapped with epoch ``epoch``'s data key."""
    info = coll.epoch(epoch)
    if info.previous is None:
        raise DecryptionFailed()
    raw = open_sealed(key, info.previous, _previous_ad(account, coll.name, epoch))
    return PRESecretKey(raw)


def walk_back(
    account: str, coll: CollectionInfo, newest: int, key: bytes, wanted: set[int]
) -> dict[int, bytes]:
    """Data keys from ``newest`` down to the oldest ``wanted`` epoch, every one on the way
    (a caller keeps them all: the next older epoch is then one step, not a walk)."""
    out = {newest: key}
    epoch = newest
    while epoch > 1 and not wanted <= set(out):
        sk = previous_secret(account, coll, epoch, out[epoch])
        epoch -= 1
        out[epoch] = data_key(sk, coll.epoch(epoch))
    return out
