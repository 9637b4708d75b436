"""Keys shared across accounts: labels, groups and direct messages.

A *shared key* is a collection of kind ``keys``: something small (a document's
data key, a message key) is sealed to its current epoch's public key as a
sealed-key record, and whoever holds a grant on that epoch gets it re-encrypted
by the owner's service. Grants to another account target that account's current
sharing key, so every live device of the grantee can open; the owner's service
refuses removed devices and revoked or expired grants (and audits every
cross-account open). Revoking a grantee starts a new epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .account import ensure_collections, grant_keys, revoke_keys
from .chain import ChainState, check_collection
from .client import path
from .device import Device
from .errors import VerificationError
from .sealed import SealedKey, seal_key

__all__ = [
    "AuditEntry",
    "GrantInfo",
    "audit_log",
    "create_shared_key",
    "grant_account",
    "list_grants",
    "open_sealed_to_key",
    "revoke_account",
    "seal_to_key",
]


def seal_to_key(chain: ChainState, key: str, plaintext: bytes) -> bytes:
    """Seal a small secret to the current epoch of ``key`` of the account whose verified
    chain is ``chain``: a sealed-key record (``keystead.core.sealed``), opaque to adapters."""
    return seal_key(chain, key, plaintext).to_bytes()


def open_sealed_to_key(
    device: Device,
    owner: ChainState,
    key: str,
    sealed: list[bytes],
    *,
    context: str = "",
    server: str | None = None,
) -> list[bytes]:
    """Open what :func:`seal_to_key` made, through this device's grants (one re-encryption
    batch at most). Works for the owner's own devices and for grantee accounts' devices."""
    records = [SealedKey.from_bytes(s) for s in sealed]
    if any(r.key != key for r in records):
        raise VerificationError(f"a sealed key for another key than {key!r}")
    return device.open_sealed(owner, records, context=context, server=server)


def create_shared_key(device: Device, name: str) -> bool:
    """Create a key for labels or groups (admin); False if it already exists.

    The account itself is its first grantee, so every live device with the scope opens."""
    return bool(ensure_collections(device, [check_collection(name)], kind="keys"))


def grant_account(
    device: Device, key: str, account: str, *, expires: int | None = None, server: str | None = None
) -> None:
    """Let ``account`` (its current sharing key) open what is sealed to ``key``."""
    grant_keys(device, key, account, expires=expires, server=server)


def revoke_account(device: Device, key: str, account: str) -> None:
    """Delete ``account``'s grant to ``key`` and start a new epoch of it."""
    revoke_keys(device, key, account)


@dataclass(frozen=True)
class GrantInfo:
    key: str
    target_kind: str
    target: str
    expires: int | None


def list_grants(device: Device, key: str | None = None) -> list[GrantInfo]:
    resp = device.client.get(path("accounts", device.account, "grants"), params={"key": key})
    return [
        GrantInfo(g["key"], g["target_kind"], g["target"], g["expires"]) for g in resp["grants"]
    ]


@dataclass(frozen=True)
class AuditEntry:
    key: str
    account: str
    device: str
    context: str
    allowed: bool
    reason: str
    time: int


def audit_log(device: Device, prefix: str = "") -> list[AuditEntry]:
    """Who opened what under this account's keys (admin only), oldest first."""
    resp = device.client.get(
        path("accounts", device.account, "audit"), params={"prefix": prefix or None}
    )
    return [
        AuditEntry(
            r["key"],
            r["grantee_account"],
            r["grantee_device"],
            r["context"],
            r["allowed"],
            r["reason"],
            r["time"],
        )
        for r in resp["records"]
    ]
