"""Keystead's core: what every application shares.

Adapters use the names exported here (and ``keystead.core.cli`` for their
command groups, ``keystead.core.service.ServiceContext`` for their routes);
everything else is internal.
"""

from __future__ import annotations

from ._encoding import b64d, b64e, canonical_json, parse_json_object
from .adapter import Adapter, discover
from .chain import ChainState, DeviceInfo
from .collections import Collection, Record, SyncResult
from .crypto import SigningKey, VerifyKey, fingerprint, open_sealed, random_bytes, seal
from .device import Device
from .errors import (
    Conflict,
    DecryptionFailed,
    DeviceRemoved,
    Forbidden,
    FormatError,
    InvalidSignature,
    KeysteadError,
    KeystoreLocked,
    NetworkError,
    NotFound,
    RateLimited,
    RollbackDetected,
    ServiceError,
    StorageError,
    UnsupportedVersion,
    VerificationError,
)
from .home import Home
from .keystore import atomic_write
from .sharing import (
    audit_log,
    create_shared_key,
    grant_account,
    list_grants,
    open_sealed_to_key,
    revoke_account,
    seal_to_key,
)

__all__ = [
    "Adapter",
    "ChainState",
    "Collection",
    "Conflict",
    "DecryptionFailed",
    "Device",
    "DeviceInfo",
    "DeviceRemoved",
    "Forbidden",
    "FormatError",
    "Home",
    "InvalidSignature",
    "KeysteadError",
    "KeystoreLocked",
    "NetworkError",
    "NotFound",
    "RateLimited",
    "Record",
    "RollbackDetected",
    "ServiceError",
    "SigningKey",
    "StorageError",
    "SyncResult",
    "UnsupportedVersion",
    "VerificationError",
    "VerifyKey",
    "atomic_write",
    "audit_log",
    "b64d",
    "b64e",
    "canonical_json",
    "create_shared_key",
    "discover",
    "fingerprint",
    "grant_account",
    "list_grants",
    "open_sealed",
    "open_sealed_to_key",
    "parse_json_object",
    "random_bytes",
    "revoke_account",
    "seal",
    "seal_to_key",
]
