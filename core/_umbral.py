"""Thin, typed wrapper over ``umbral_pre``: the only module that touches it.

Everything here works on bytes in and bytes out so the rest of the core never
sees an ``umbral_pre`` object, and every failure becomes a Keystead error.
Higher layers (``grants``, ``collections``) give these meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import umbral_pre as _u

from .errors import DecryptionFailed, FormatError, VerificationError

__all__ = [
    "PREPublicKey",
    "PRESecretKey",
    "decrypt",
    "decrypt_reencrypted",
    "encrypt",
    "make_kfrag",
    "reencrypt",
    "verify_cfrag",
    "verify_kfrag",
]

# The stubs of umbral_pre lack its VerificationError (it exists at runtime).
_UmbralVerificationError: type[Exception] = _u.VerificationError  # type: ignore[attr-defined]

CAPSULE_SIZE = 105


@dataclass(frozen=True)
class PREPublicKey:
    """An Umbral (secp256k1) public key, 33 compressed bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        try:
            _u.PublicKey.from_compressed_bytes(self.raw)
        except (ValueError, TypeError) as e:
            raise FormatError("not an Umbral public key") from e

    def _key(self) -> _u.PublicKey:
        return _u.PublicKey.from_compressed_bytes(self.raw)


class PRESecretKey:
    """An Umbral secret key. Never leaves the keystore except encrypted."""

    __slots__ = ("_sk",)

    def __init__(self, raw: bytes) -> None:
        try:
            self._sk = _u.SecretKey.from_be_bytes(raw)
        except (ValueError, TypeError) as e:
            raise FormatError("not an Umbral secret key") from e

    @classmethod
    def generate(cls) -> PRESecretKey:
        return cls(_u.SecretKey.random().to_be_bytes())

    def to_bytes(self) -> bytes:
        return bytes(self._sk.to_be_bytes())

    @property
    def public_key(self) -> PREPublicKey:
        return PREPublicKey(bytes(self._sk.public_key().to_compressed_bytes()))


def sign(sk: PRESecretKey, message: bytes) -> bytes:
    """An ECDSA signature by an Umbral key (used by the recovery key, which has no Ed25519)."""
    return bytes(_u.Signer(sk._sk).sign(message).to_be_bytes())


def verify(pk: PREPublicKey, message: bytes, signature: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is ``pk``'s over ``message``."""
    from .errors import InvalidSignature

    try:
        ok = _u.Signature.from_be_bytes(signature).verify(pk._key(), message)
    except (ValueError, TypeError) as e:
        raise InvalidSignature() from e
    if not ok:
        raise InvalidSignature()


def encrypt(pk: PREPublicKey, plaintext: bytes) -> tuple[bytes, bytes]:
    """Encrypt to ``pk``: returns (capsule, ciphertext)."""
    capsule, ct = _u.encrypt(pk._key(), plaintext)
    return bytes(capsule), bytes(ct)


def _capsule(raw: bytes) -> _u.Capsule:
    try:
        return _u.Capsule.from_bytes(raw)
    except (ValueError, TypeError) as e:
        raise FormatError("not an Umbral capsule") from e


def decrypt(sk: PRESecretKey, capsule: bytes, ciphertext: bytes) -> bytes:
    """Decrypt with the key the capsule was made for."""
    try:
        return bytes(_u.decrypt_original(sk._sk, _capsule(capsule), ciphertext))
    except (ValueError, TypeError) as e:
        raise DecryptionFailed() from e


def make_kfrag(delegating: PRESecretKey, receiving: PREPublicKey, signer: PRESecretKey) -> bytes:
    """One kfrag (threshold 1 of 1) from ``delegating`` to ``receiving``, signed by ``signer``."""
    kfrags = _u.generate_kfrags(
        delegating_sk=delegating._sk,
        receiving_pk=receiving._key(),
        signer=_u.Signer(signer._sk),
        threshold=1,
        shares=1,
        sign_delegating_key=True,
        sign_receiving_key=True,
    )
    return bytes(kfrags[0])


def verify_kfrag(
    kfrag: bytes, *, signer: PREPublicKey, delegating: PREPublicKey, receiving: PREPublicKey
) -> None:
    """Raise ``VerificationError`` unless the kfrag is signed by ``signer`` for this pair."""
    try:
        _u.KeyFrag.from_bytes(kfrag).verify(signer._key(), delegating._key(), receiving._key())
    except (ValueError, TypeError, _UmbralVerificationError) as e:
        raise VerificationError("key fragment did not verify") from e


def _stored_kfrag(kfrag: bytes) -> _u.VerifiedKeyFrag:
    """A kfrag that was verified when it was stored (``verify_kfrag``), ready to use."""
    try:
        return _u.KeyFrag.from_bytes(kfrag).skip_verification()
    except (ValueError, TypeError) as e:
        raise FormatError("not a key fragment") from e


def reencrypt(capsule: bytes, kfrag: bytes) -> bytes:
    """Re-encrypt a capsule with a kfrag the caller has verified when it was stored."""
    return bytes(_u.reencrypt(_capsule(capsule), _stored_kfrag(kfrag)))


class ReencryptorCache:
    """Parsed kfrags and capsules kept per process.

    Parsing a kfrag dominates a small re-encryption; parsing a capsule checks it (a curve
    multiplication, about 0.6 of the re-encryption itself). A capsule is an epoch's: every
    device that reads the epoch's items sends the same one, so the parsed capsule is kept
    too, keyed by its bytes (a parsed capsule is nothing but its bytes, checked)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._kfrags: dict[bytes, _u.VerifiedKeyFrag] = {}
        self._capsules: dict[bytes, _u.Capsule] = {}

    def reencrypt(self, capsule: bytes, kfrag: bytes) -> bytes:
        vkf = self._kfrags.get(kfrag)
        if vkf is None:
            vkf = _stored_kfrag(kfrag)
            if len(self._kfrags) >= self._size:
                self._kfrags.clear()
            self._kfrags[kfrag] = vkf
        parsed = self._capsules.get(capsule)
        if parsed is None:
            parsed = _capsule(capsule)
            if len(self._capsules) >= self._size:
                self._capsules.clear()
            self._capsules[capsule] = parsed
        return bytes(_u.reencrypt(parsed, vkf))


def verify_cfrag(
    cfrag: bytes,
    *,
    capsule: bytes,
    signer: PREPublicKey,
    delegating: PREPublicKey,
    receiving: PREPublicKey,
) -> bytes:
    """Check a cfrag against the kfrag signer; returns it ready for decryption."""
    try:
        _u.CapsuleFrag.from_bytes(cfrag).verify(
            _capsule(capsule), signer._key(), delegating._key(), receiving._key()
        )
    except (ValueError, TypeError, _UmbralVerificationError) as e:
        raise VerificationError("capsule fragment did not verify") from e
    return cfrag


def decrypt_reencrypted(
    receiving: PRESecretKey,
    delegating: PREPublicKey,
    capsule: bytes,
    cfrags: Sequence[bytes],
    ciphertext: bytes,
) -> bytes:
    """Decrypt with cfrags that :func:`verify_cfrag` has accepted."""
    try:
        vcfrags = [_u.CapsuleFrag.from_bytes(c).skip_verification() for c in cfrags]
        plain = _u.decrypt_reencrypted(
            receiving._sk, delegating._key(), _capsule(capsule), vcfrags, ciphertext
        )
    except (ValueError, TypeError) as e:
        raise DecryptionFailed() from e
    if plain is None:
        raise DecryptionFailed()
    return bytes(plain)
