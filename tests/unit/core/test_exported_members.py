"""Pin the public names of the core's public modules (httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "keystead.core.errors": [
        "Conflict",
        "DecryptionFailed",
        "DeviceRemoved",
        "Forbidden",
        "FormatError",
        "InvalidSignature",
        "KeysteadError",
        "KeystoreLocked",
        "NetworkError",
        "NotFound",
        "QuotaExceeded",
        "RateLimited",
        "RollbackDetected",
        "ServiceError",
        "StorageError",
        "Unavailable",
        "UnsupportedVersion",
        "VerificationError",
    ],
    "keystead.core.crypto": [
        "AEAD_KEY_SIZE",
        "AEAD_NONCE_SIZE",
        "SigningKey",
        "VerifyKey",
        "fingerprint",
        "open_sealed",
        "random_bytes",
        "seal",
    ],
    "keystead.core.chain": [
        "ChainState",
        "CollectionInfo",
        "DeviceInfo",
        "SignedEntry",
        "check_head",
        "device_statement",
        "make_entry",
        "sign_device_statement",
        "verify_chain",
    ],
    "keystead.core.items": [
        "GROUP",
        "ItemVerifier",
        "SealedItem",
        "check_item_id",
        "item_message",
        "open_item",
        "seal_item",
        "sign_items",
    ],
    "keystead.core.bundle": ["Plan", "bundle_digest", "recovery_blob"],
    "keystead.core.epochs": ["NewEpoch", "data_key", "new_epoch", "previous_secret", "walk_back"],
    "keystead.core.sealed": ["MAX_SEALED_PLAINTEXT", "SealedKey", "seal_key"],
    "keystead.core.requests": [
        "HEADER_DEVICE",
        "RequestAuth",
        "origin_of",
        "parse_auth",
        "request_message",
        "sign_request",
    ],
    "keystead.core.keystore": ["Keystore", "atomic_write"],
    "keystead.core.keys": [
        "AccountSecrets",
        "DeviceKeys",
        "format_recovery_key",
        "parse_recovery_key",
    ],
    "keystead.core.home": ["Home", "LocalCache"],
    "keystead.core.client": ["ServiceClient", "Signer"],
    "keystead.core.device": ["Device", "fetch_chain"],
    "keystead.core.collections": ["ADMIN_ONLY", "Collection", "Record", "SyncResult", "Unreadable"],
    "keystead.core.pairing": [
        "Invite",
        "JoinTicket",
        "PairingDetails",
        "pairing_details",
        "parse_invite",
        "short_authentication_string",
        "start_join",
        "wait_for_approval",
    ],
    "keystead.core.account": [
        "JoinTicket",
        "PairingDetails",
        "approve_device",
        "create_account",
        "ensure_collections",
        "finish_pending",
        "grant_keys",
        "pairing_details",
        "recover_account",
        "refresh_grants",
        "remove_device",
        "revoke_keys",
        "start_join",
        "wait_for_approval",
    ],
    "keystead.core.adapter": [
        "Adapter",
        "BrokenAdapter",
        "Channel",
        "DeclaresChannels",
        "DeclaresKeystoreSlot",
        "DeclaresNamespaces",
        "HasCapabilityRoutes",
        "HasQuickCommands",
        "HasResolver",
        "HasRotationHook",
        "HasSyncedHook",
        "HasRouter",
        "Poster",
        "ProvidesServices",
        "broken",
        "discover",
    ],
    "keystead.core.capabilities": [
        "AdapterCapabilities",
        "ChannelClient",
        "ChannelMessage",
        "Confirmer",
        "KeystoreSlot",
        "RecordNamespace",
        "RequestNonce",
        "RouteClient",
        "ServiceCapabilities",
        "ServiceChannel",
        "ServiceUnavailable",
        "SshKeySource",
        "capabilities_for",
        "provider_of",
    ],
    "keystead.core.text": ["DEFAULT_LIMIT", "printable"],
    "keystead.core.address": ["Address", "is_loopback_host"],
    "keystead.core.localstore": ["LocalStore", "Migration"],
    "keystead.core.audit": ["AuditPage", "AuditRecord", "read_audit"],
    "keystead.core.testing": [
        "CLI",
        "DeviceHome",
        "PASSPHRASE",
        "ServiceProcess",
        "database_url",
        "free_port",
        "unique",
    ],
    "keystead.core.service": [
        "ServiceConfig",
        "ServiceContext",
        "Store",
        "app_for",
        "build_app",
        "create_app",
        "default_database_url",
        "make_context",
        "open_context",
        "service_dir",
    ],
    "keystead.core.cli": [
        "cli",
        "die",
        "get_passphrase",
        "home",
        "iso_time",
        "json_option",
        "main",
        "open_device",
        "print_json",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_every_error_is_a_keystead_error() -> None:
    from keystead.core import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.KeysteadError)
