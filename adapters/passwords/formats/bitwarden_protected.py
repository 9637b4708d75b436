"""Bitwarden's password-protected JSON export: the unencrypted export, encrypted whole.

``{"encrypted": true, "passwordProtected": true, "salt", "kdfType",
"kdfIterations", "kdfMemory", "kdfParallelism",
"encKeyValidation_DO_NOT_EDIT", "data"}``. The key is derived from the
password with the salt *string's* UTF-8 bytes: PBKDF2-SHA256 (``kdfType`` 0)
or Argon2id (1; salt SHA-256-hashed first, memory in MiB), then stretched
with HKDF-Expand-SHA256 into an encryption key (info ``enc``) and a MAC key
(``mac``). ``data`` and the validation value are EncStrings of type 2:
``2.<iv>|<ciphertext>|<mac>`` (base64), AES-256-CBC with PKCS#7 and
HMAC-SHA256 over iv‖ciphertext. Any failure to open is one
``WrongFilePassword``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from .._errors import MalformedFile, WrongFilePassword

__all__ = ["MAX_ARGON2_MIB", "MAX_PBKDF2_ITERATIONS", "open_protected"]

NAME = "bitwarden-json"
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_ARGON2_MIB = 4096
MAX_ARGON2_ITERATIONS = 100


def _int(doc: dict[str, Any], key: str, low: int, high: int) -> int:
    value = doc.get(key)
    if type(value) is not int or not low <= value <= high:
        raise MalformedFile(NAME, 1, f"{key} must be an integer from {low} to {high}")
    return value


def _key(doc: dict[str, Any], password: str) -> tuple[bytes, bytes]:
    salt = doc.get("salt")
    if not isinstance(salt, str) or not salt:
        raise MalformedFile(NAME, 1, "salt must be a non-empty string")
    secret, salt_bytes = password.encode("utf-8"), salt.encode("utf-8")
    kind = doc.get("kdfType")
    if kind == 0 and type(kind) is int:
        n = _int(doc, "kdfIterations", 5000, MAX_PBKDF2_ITERATIONS)
        key = hashlib.pbkdf2_hmac("sha256", secret, salt_bytes, n, 32)
    elif kind == 1 and type(kind) is int:
        from argon2.low_level import Type, hash_secret_raw

        key = hash_secret_raw(
            secret,
            hashlib.sha256(salt_bytes).digest(),
            time_cost=_int(doc, "kdfIterations", 1, MAX_ARGON2_ITERATIONS),
            memory_cost=_int(doc, "kdfMemory", 15, MAX_ARGON2_MIB) * 1024,
            parallelism=_int(doc, "kdfParallelism", 1, 16),
            hash_len=32,
            type=Type.ID,
        )
    else:
        raise MalformedFile(NAME, 1, f"kdfType {kind!r} is not 0 (PBKDF2) or 1 (Argon2id)")
    return _expand(key, b"enc"), _expand(key, b"mac")


def _expand(prk: bytes, info: bytes) -> bytes:
    """HKDF-Expand (RFC 5869) to 32 bytes: one block."""
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _decrypt(enc: bytes, mac_key: bytes, value: object) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if not isinstance(value, str) or not value.startswith("2."):
        raise MalformedFile(NAME, 1, "an encrypted value is not of type 2 (AES-CBC + HMAC)")
    try:
        iv, ct, mac = (base64.b64decode(p, validate=True) for p in value[2:].split("|"))
    except (ValueError, binascii.Error):
        raise MalformedFile(NAME, 1, "an encrypted value is not iv|data|mac in base64") from None
    if len(iv) != 16 or len(mac) != 32 or not ct or len(ct) % 16:
        raise MalformedFile(NAME, 1, "an encrypted value has the wrong lengths")
    if not hmac.compare_digest(hmac.new(mac_key, iv + ct, hashlib.sha256).digest(), mac):
        raise WrongFilePassword("the password does not open this Bitwarden export")
    dec = Cipher(algorithms.AES(enc), modes.CBC(iv)).decryptor()
    unpad = padding.PKCS7(128).unpadder()
    try:
        return unpad.update(dec.update(ct) + dec.finalize()) + unpad.finalize()
    except ValueError:
        raise WrongFilePassword("the password does not open this Bitwarden export") from None


def open_protected(doc: dict[str, Any], password: str) -> str:
    """The inner (unencrypted) export's text; WrongFilePassword if the password is wrong."""
    enc, mac = _key(doc, password)
    _decrypt(enc, mac, doc.get("encKeyValidation_DO_NOT_EDIT"))
    try:
        return _decrypt(enc, mac, doc.get("data")).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedFile(NAME, 1, "the decrypted data is not UTF-8") from None
