"""Pin the public names of the core's public modules (httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "keystead.core.errors": ["Conflict", "DecryptionFailed", "DeviceRemoved", "Forbidden",
                             "FormatError", "InvalidSignature", "KeysteadError",
                             "KeystoreLocked", "NetworkError", "NotFound", "QuotaExceeded",
                             "RateLimited", "RollbackDetected", "ServiceError", "StorageError",
                             "Unavailable", "UnsupportedVersion", "VerificationError"],
    "keystead.core.crypto": ["AEAD_KEY_SIZE", "AEAD_NONCE_SIZE", "SigningKey", "VerifyKey",
                             "fingerprint", "open_sealed", "random_bytes", "seal"],
    "keystead.core.chain": ["ChainState", "CollectionInfo", "DeviceInfo", "SignedEntry",
                            "check_head", "device_statement", "make_entry",
                            "sign_device_statement", "verify_chain"],
    "keystead.core.items": ["SealedItem", "check_item_id", "open_item", "seal_item"],
    "keystead.core.requests": ["HEADER_DEVICE", "RequestAuth", "parse_auth",
                               "request_message", "sign_request"],
    "keystead.core.keystore": ["Keystore", "atomic_write"],
    "keystead.core.keys": ["AccountSecrets", "DeviceKeys", "format_recovery_key",
                           "parse_recovery_key"],
    "keystead.core.home": ["Home", "LocalCache"],
    "keystead.core.client": ["ServiceClient", "Signer"],
    "keystead.core.device": ["Device", "fetch_chain"],
    "keystead.core.collections": ["Collection", "Record", "SyncResult"],
    "keystead.core.account": ["JoinTicket", "PairingDetails", "approve_device",
                              "create_account", "ensure_collections", "pairing_details",
                              "recover_account", "remove_device", "start_join",
                              "wait_for_approval"],
    "keystead.core.adapter": ["Adapter", "discover"],
    "keystead.core.testing": ["ServiceProcess", "free_port"],
    "keystead.core.service": ["ServiceConfig", "ServiceContext", "Store", "app_for",
                              "build_app", "create_app", "default_database_url",
                              "make_context", "open_context"],
    "keystead.core.cli": ["cli", "die", "get_passphrase", "home", "iso_time", "json_option",
                          "main", "open_device", "print_json"],
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
