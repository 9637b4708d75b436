"""Keys shared across accounts: labels, groups and direct messages.

A *shared key* is a collection key used without epochs: something small (a
document's data key, a message key) is sealed to its public key as an Umbral
capsule, and whoever holds a grant gets it re-encrypted by the owner's service.
Grants to another account target that account's current sharing key, so every
live device of the grantee can open, and the owner's service refuses removed
devices and revoked or expired grants (and audits every cross-account open).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _umbral
from ._encoding import b64e
from ._umbral import CAPSULE_SIZE
from .account import ensure_collections
from .chain import ChainState, check_collection
from .client import path
from .device import Device
from .errors import FormatError, NotFound

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
    """Encrypt a small secret to ``key`` of the account whose verified chain is ``chain``."""
    capsule, ct = _umbral.encrypt(chain.collection(key).public_key, plaintext)
    return capsule + ct


def _split(sealed: bytes) -> tuple[bytes, bytes]:
    if len(sealed) <= CAPSULE_SIZE:
        raise FormatError("sealed key material is truncated")
    return sealed[:CAPSULE_SIZE], sealed[CAPSULE_SIZE:]


def open_sealed_to_key(device: Device, owner: ChainState, key: str, sealed: list[bytes], *,
                       context: str = "", server: str | None = None) -> list[bytes]:
    """Open what :func:`seal_to_key` made, through a grant (one re-encryption batch).

    Works for the owner's own devices (an admin decrypts directly; others through a
    device or account grant) and for grantee accounts' devices."""
    parts = [_split(s) for s in sealed]
    secrets = device.secrets
    if owner.account == device.account and secrets is not None and key in secrets.collections:
        return [_umbral.decrypt(secrets.collections[key], c, ct) for c, ct in parts]
    if owner.account == device.account and key in device.me().scopes:
        return device.open_own(key, parts, context=context)
    return device.open_shared(owner, key, parts, context=context, server=server)


def create_shared_key(device: Device, name: str) -> bool:
    """Create a key for labels or groups (admin); False if it already exists.

    The owner's own devices get an account grant, so every live device can open."""
    check_collection(name)
    created = bool(ensure_collections(device, [name]))
    if created:
        grant_account(device, name, device.account)
    return created


def grant_account(device: Device, key: str, account: str, *, expires: int | None = None,
                  server: str | None = None) -> None:
    """Let ``account`` (its current sharing key) open what is sealed to ``key``."""
    secrets = device.secrets
    if secrets is None or key not in secrets.collections:
        raise NotFound(f"this device does not hold the key {key!r}")
    other = device.chain() if account == device.account else device.peer_chain(account, server)
    gen = other.sharing_generation
    kfrag = _umbral.make_kfrag(secrets.collections[key], other.sharing_key, secrets.kfrag_signer)
    device.client.put(path("accounts", device.account, "grants"), {"grants": [{
        "key": key, "target_kind": "account", "target": account, "target_generation": gen,
        "kfrag": b64e(kfrag), "expires": expires}]})


def revoke_account(device: Device, key: str, account: str) -> None:
    """Delete ``account``'s grant to ``key``: its next open is refused."""
    device.client.post(path("accounts", device.account, "grants", "delete"),
                       {"key": key, "target_kind": "account", "target": account})


@dataclass(frozen=True)
class GrantInfo:
    key: str
    target_kind: str
    target: str
    expires: int | None


def list_grants(device: Device, key: str | None = None) -> list[GrantInfo]:
    resp = device.client.get(path("accounts", device.account, "grants"), params={"key": key})
    return [GrantInfo(g["key"], g["target_kind"], g["target"], g["expires"])
            for g in resp["grants"]]


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
    resp = device.client.get(path("accounts", device.account, "audit"),
                             params={"prefix": prefix or None})
    return [AuditEntry(r["key"], r["grantee_account"], r["grantee_device"], r["context"],
                       r["allowed"], r["reason"], r["time"]) for r in resp["records"]]


