"""The safe cryptographic API adapters use: purpose-bound signatures and AEAD.

Raw primitives stay here and in ``_umbral``; adapters never call Ed25519 or
ChaCha20-Poly1305 directly. Every signature is bound to a *purpose* string
(``keystead/v1/...``), so a signature made for one use can never be replayed
as another.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .errors import DecryptionFailed, FormatError, InvalidSignature

__all__ = [
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "SigningKey",
    "VerifyKey",
    "fingerprint",
    "open_sealed",
    "random_bytes",
    "seal",
]

AEAD_KEY_SIZE = 32
AEAD_NONCE_SIZE = 12
_TAG_SIZE = 16


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


def _signed_message(purpose: str, message: bytes) -> bytes:
    if not purpose.startswith("keystead/") or "\x00" in purpose:
        raise ValueError(f"bad signature purpose {purpose!r}")
    return purpose.encode() + b"\x00" + message


def fingerprint(public_bytes: bytes) -> str:
    """A short, human-comparable fingerprint of a public key: ``SHA256:`` + 43 base64 chars."""
    import base64

    digest = hashlib.sha256(public_bytes).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


_PARSED: dict[bytes, Ed25519PublicKey] = {}


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key that verifies purpose-bound signatures."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise FormatError("an Ed25519 public key is 32 bytes")

    def verify(self, purpose: str, message: bytes, signature: bytes) -> None:
        """Raise ``InvalidSignature`` unless ``signature`` signs ``message`` for ``purpose``."""
        if len(signature) != 64:
            raise InvalidSignature()
        try:
            self._parsed().verify(signature, _signed_message(purpose, message))
        except (_CryptoInvalidSignature, ValueError) as e:
            raise InvalidSignature() from e

    def _parsed(self) -> Ed25519PublicKey:
        """The parsed key, from a bounded per-process cache (the service verifies many
        requests of the same devices; parsing is a point decompression each time)."""
        parsed = _PARSED.get(self.raw)
        if parsed is None:
            parsed = Ed25519PublicKey.from_public_bytes(self.raw)
            if len(_PARSED) >= 8192:
                _PARSED.clear()
            _PARSED[self.raw] = parsed
        return parsed

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)


class SigningKey:
    """An Ed25519 private key that signs only with an explicit purpose."""

    __slots__ = ("_key", "_seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise FormatError("an Ed25519 private key is 32 bytes")
        self._seed = bytes(seed)
        self._key = Ed25519PrivateKey.from_private_bytes(self._seed)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(random_bytes(32))

    def to_bytes(self) -> bytes:
        """The 32-byte seed. Handle with care: this is the private key."""
        return self._seed

    @property
    def verify_key(self) -> VerifyKey:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return VerifyKey(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, purpose: str, message: bytes) -> bytes:
        return self._key.sign(_signed_message(purpose, message))

    def __repr__(self) -> str:
        return f"SigningKey({self.verify_key.fingerprint})"


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """ChaCha20-Poly1305 with a random nonce; returns ``nonce || ciphertext || tag``."""
    if len(key) != AEAD_KEY_SIZE:
        raise ValueError("AEAD keys are 32 bytes")
    nonce = random_bytes(AEAD_NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Open what :func:`seal` produced; any failure is ``DecryptionFailed``."""
    if len(key) != AEAD_KEY_SIZE:
        raise ValueError("AEAD keys are 32 bytes")
    if len(sealed) < AEAD_NONCE_SIZE + _TAG_SIZE:
        raise DecryptionFailed()
    try:
        return ChaCha20Poly1305(key).decrypt(
            sealed[:AEAD_NONCE_SIZE], sealed[AEAD_NONCE_SIZE:], associated_data
        )
    except InvalidTag as e:
        raise DecryptionFailed() from e
