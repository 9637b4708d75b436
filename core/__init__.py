"""Keystead's core: what every application shares.

Adapters use the names exported here (and ``keystead.core.cli`` for their
command groups, ``keystead.core.service.ServiceContext`` for their routes);
everything else is internal.
"""

from __future__ import annotations

from .lazy import lazy_exports

TYPE_CHECKING = False  # not typing's: the launcher imports this package and not typing

_LAZY = {
    "Adapter": "adapter",
    "ChainState": "chain",
    "Collection": "collections",
    "Conflict": "errors",
    "DecryptionFailed": "errors",
    "Device": "device",
    "DeviceInfo": "chain",
    "DeviceRemoved": "errors",
    "Forbidden": "errors",
    "FormatError": "errors",
    "Home": "home",
    "InvalidSignature": "errors",
    "KeysteadError": "errors",
    "KeystoreLocked": "errors",
    "NetworkError": "errors",
    "NotFound": "errors",
    "RateLimited": "errors",
    "Record": "collections",
    "RollbackDetected": "errors",
    "ServiceError": "errors",
    "SigningKey": "crypto",
    "StorageError": "errors",
    "SyncResult": "collections",
    "UnsupportedVersion": "errors",
    "VerificationError": "errors",
    "VerifyKey": "crypto",
    "atomic_write": "keystore",
    "audit_log": "sharing",
    "b64d": "_encoding",
    "b64e": "_encoding",
    "canonical_json": "_encoding",
    "create_shared_key": "sharing",
    "discover": "adapter",
    "fingerprint": "crypto",
    "grant_account": "sharing",
    "list_grants": "sharing",
    "open_sealed": "crypto",
    "open_sealed_to_key": "sharing",
    "parse_json_object": "_encoding",
    "random_bytes": "crypto",
    "revoke_account": "sharing",
    "seal": "crypto",
    "seal_to_key": "sharing",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), {n: f".{m}" for n, m in _LAZY.items()})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
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
