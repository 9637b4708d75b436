"""The device's local keystore: one file, encrypted at rest, written atomically.

Format (version 2), a JSON object::

    {"keystead-keystore": 2, "kdf": {"alg": "scrypt", "n": N, "r": 8, "p": 1, "salt": B64},
     "sealed": B64(nonce || ChaCha20-Poly1305(contents))}

The contents are a JSON object of the caller's choosing. The key is derived once
per process; later saves reuse it (and the salt), so saving is cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import labels
from ._encoding import b64d, b64e, parse_json_object
from .crypto import open_sealed, random_bytes, seal
from .errors import DecryptionFailed, FormatError, KeystoreLocked, StorageError, UnsupportedVersion

__all__ = ["Keystore", "atomic_write"]

VERSION = 2
# The keystore holds the account key on admin devices: scrypt at 2^17 x r=8 (128 MiB, about
# 0.4 s here) is what current guidance asks for a key-holding file. Every parameter is bounded
# when read, so a crafted file cannot make unlocking take hours or all memory.
DEFAULT_SCRYPT_N = 2**17
_N_RANGE = (2**14, 2**20)
_R_RANGE = (8, 16)
_P_RANGE = (1, 4)


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new file.

    ``durable`` also waits for the disk (fsync); caches that can be rebuilt skip it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _creation_cost() -> int:
    """scrypt's N for a new keystore: ``KEYSTEAD_SCRYPT_N`` may lower it (test suites that
    create hundreds of devices; never below 2^14), else the default."""
    raw = os.environ.get("KEYSTEAD_SCRYPT_N")
    if raw is None:
        return DEFAULT_SCRYPT_N
    if not raw.isdigit() or not _N_RANGE[0] <= int(raw) <= _N_RANGE[1]:
        raise FormatError("KEYSTEAD_SCRYPT_N must be a power of two from 2^14 to 2^20")
    return int(raw)


class Keystore:
    """An open keystore: ``data`` is the decrypted contents; :meth:`save` writes them back."""

    def __init__(self, path: Path, key: bytes, kdf: dict[str, Any], data: dict[str, Any]) -> None:
        self.path = path
        self._key = key
        self._kdf = kdf
        self.data = data

    @staticmethod
    def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
        if kdf.get("alg") != "scrypt":
            raise UnsupportedVersion(f"unknown keystore KDF {kdf.get('alg')!r}")
        n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
        bounds = ((n, _N_RANGE), (r, _R_RANGE), (p, _P_RANGE))
        if not all(type(x) is int and lo <= x <= hi for x, (lo, hi) in bounds):
            raise FormatError("keystore KDF parameters out of range")
        if n & (n - 1):  # type: ignore[operator]
            raise FormatError("keystore KDF parameters out of range")
        salt = b64d(kdf.get("salt"), size=16, what="keystore salt")
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(  # type: ignore[arg-type]
            passphrase.encode()
        )

    @classmethod
    def create(
        cls, path: Path, passphrase: str, data: dict[str, Any], *, scrypt_n: int | None = None
    ) -> Keystore:
        if not passphrase:
            raise KeystoreLocked("an empty passphrase would leave the keystore unprotected")
        if path.exists():
            raise StorageError(f"{path} already exists: this home already holds a device")
        if scrypt_n is None:
            scrypt_n = _creation_cost()
        kdf = {"alg": "scrypt", "n": scrypt_n, "r": 8, "p": 1, "salt": b64e(random_bytes(16))}
        store = cls(path, cls._derive(passphrase, kdf), kdf, data)
        store.save()
        return store

    @classmethod
    def open(
        cls, path: Path, passphrase: str | None = None, *, key: bytes | None = None
    ) -> Keystore:
        """Unlock with the passphrase, or with an already derived ``key`` (the unlock agent)."""
        if (passphrase is None) == (key is None):
            raise ValueError("give exactly one of passphrase and key")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no keystore at {path}: create an account or join one") from None
        obj = parse_json_object(raw, what="keystore")
        found = obj.get("keystead-keystore")
        if found != VERSION:
            raise UnsupportedVersion(
                f"{path} is a keystore of version {found!r}; this Keystead reads version "
                f"{VERSION} (pre-release: create or join the account again)"
            )
        kdf = obj.get("kdf")
        if not isinstance(kdf, dict):
            raise FormatError("keystore: missing KDF parameters")
        if passphrase is not None:
            key = cls._derive(passphrase, kdf)
        assert key is not None  # exactly one of the two, checked above
        try:
            plain = open_sealed(key, b64d(obj.get("sealed"), what="keystore"), labels.KEYSTORE_AD)
        except DecryptionFailed:
            raise KeystoreLocked("wrong passphrase for the keystore") from None
        return cls(path, key, kdf, parse_json_object(plain, what="keystore contents"))

    @property
    def key(self) -> bytes:
        """The derived key (for the unlock agent). Handle as the secret it is."""
        return self._key

    def save(self, *, durable: bool = True) -> None:
        """Write the contents back; ``durable=False`` for cache updates that can be redone."""
        plain = json.dumps(self.data, separators=(",", ":")).encode()
        doc = {
            "keystead-keystore": VERSION,
            "kdf": self._kdf,
            "sealed": b64e(seal(self._key, plain, labels.KEYSTORE_AD)),
        }
        atomic_write(self.path, json.dumps(doc).encode(), durable=durable)
