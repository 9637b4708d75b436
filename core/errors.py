"""Keystead's exception tree.

Every error the library raises on bad input or a failed check is a
``KeysteadError``; programmer misuse raises ``TypeError``/``ValueError``.

    KeysteadError
    ├── FormatError              bytes, JSON, base64 or a version we do not accept
    │   └── UnsupportedVersion
    ├── VerificationError        a signature, hash link, kfrag or cfrag did not verify
    │   ├── InvalidSignature
    │   └── RollbackDetected     the service served less than this device has seen
    ├── DecryptionFailed         one message for every way decryption can fail
    ├── StorageError             the local keystore or the service database
    │   ├── KeystoreLocked       no passphrase available, or the wrong one
    │   └── Conflict             optimistic concurrency: a stale write
    ├── NetworkError             the service could not be reached
    ├── ServiceError             the service answered with an error
    ├── NotFound
    ├── Forbidden
    │   └── DeviceRemoved        this device is no longer live in its account
    └── RateLimited              too many attempts; try again later

Crypto failures deliberately carry no detail (Fernet's ``InvalidToken``): the
CLI turns each into one clear line for the person.
"""

from __future__ import annotations

__all__ = [
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
    "RollbackDetected",
    "RateLimited",
    "ServiceError",
    "StorageError",
    "UnsupportedVersion",
    "VerificationError",
]


class KeysteadError(Exception):
    """Root of every error Keystead raises on bad input or failed checks."""


class FormatError(KeysteadError):
    """Input is not in the format we accept (malformed, wrong length, bad base64...)."""


class UnsupportedVersion(FormatError):
    """A serialized object carries a version this code does not know."""


class VerificationError(KeysteadError):
    """Something carrying authority did not verify."""


class InvalidSignature(VerificationError):
    """A signature did not verify. Deliberately says nothing more."""

    def __init__(self, message: str = "invalid signature") -> None:
        super().__init__(message)


class RollbackDetected(VerificationError):
    """The service served an older or forked account chain than one already seen."""


class DecryptionFailed(KeysteadError):
    """Decryption failed. One message for every failure path."""

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class StorageError(KeysteadError):
    """The local keystore or the service's storage could not do what was asked."""


class KeystoreLocked(StorageError):
    """The keystore cannot be unlocked (no passphrase given, or a wrong one)."""


class Conflict(StorageError):
    """A write was based on a stale version and was refused."""


class NetworkError(KeysteadError):
    """The service could not be reached."""


class ServiceError(KeysteadError):
    """The service answered with an error we have no more specific type for."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotFound(KeysteadError):
    """The thing asked for does not exist."""


class Forbidden(KeysteadError):
    """The caller may not do this."""


class DeviceRemoved(Forbidden):
    """This device has been removed from its account."""


class RateLimited(KeysteadError):
    """Too many attempts (pairing-code guesses, for one)."""
