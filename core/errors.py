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
    │   └── Unavailable          the service's database is down for now (503)
    ├── NotFound
    ├── Forbidden
    │   └── DeviceRemoved        this device is no longer live in its account
    ├── RateLimited              too many attempts; try again later (429)
    └── QuotaExceeded            an account or request is over a stated limit (413)

Each class carries its wire ``code`` and HTTP ``status``: the service answers
with them and the client maps a code back to the class, from this one table
(:data:`ERROR_CODES`). An error may carry a ``hint``: what the person can do
now, printed by the CLI on a second line.

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
    "QuotaExceeded",
    "RollbackDetected",
    "RateLimited",
    "ServiceError",
    "StorageError",
    "Unavailable",
    "UnsupportedVersion",
    "VerificationError",
]


class KeysteadError(Exception):
    """Root of every error Keystead raises on bad input or failed checks."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class FormatError(KeysteadError):
    """Input is not in the format we accept (malformed, wrong length, bad base64...)."""


class UnsupportedVersion(FormatError):
    """A serialized object carries a version this code does not know."""

    code = "unsupported_version"


class VerificationError(KeysteadError):
    """Something carrying authority did not verify."""

    code = "verification_failed"


class InvalidSignature(VerificationError):
    """A signature did not verify. Deliberately says nothing more."""

    code = "invalid_signature"
    status = 401

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

    code = "conflict"
    status = 409


class NetworkError(KeysteadError):
    """The service could not be reached."""


class ServiceError(KeysteadError):
    """The service answered with an error we have no more specific type for."""

    code = "service_error"
    status = 500

    def __init__(
        self, message: str, status: int = 0, code: str = "", *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class Unavailable(ServiceError):
    """The service cannot reach its database right now; the request changed nothing."""

    code = "unavailable"
    status = 503

    def __init__(
        self,
        message: str = "the service is temporarily unavailable",
        status: int = 503,
        code: str = "unavailable",
        *,
        hint: str | None = "try again in a few seconds",
    ) -> None:
        super().__init__(message, status, code, hint=hint)


class NotFound(KeysteadError):
    """The thing asked for does not exist."""

    code = "not_found"
    status = 404


class Forbidden(KeysteadError):
    """The caller may not do this."""

    code = "forbidden"
    status = 403


class DeviceRemoved(Forbidden):
    """This device has been removed from its account."""

    code = "device_removed"


class RateLimited(KeysteadError):
    """Too many attempts (pairing-code guesses, account creations, re-encryptions...).

    ``limit`` names the limit; ``retry_after`` is the seconds until it lets a request
    through again (the service sends it as ``Retry-After``)."""

    code = "rate_limited"
    status = 429

    def __init__(
        self,
        message: str = "too many requests",
        *,
        limit: str = "",
        retry_after: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit
        self.retry_after = retry_after


class QuotaExceeded(KeysteadError):
    """A request or an account is over a stated limit (items, bytes, spool, batch size)."""

    code = "quota_exceeded"
    status = 413

    def __init__(
        self, message: str = "over quota", *, limit: str = "", hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit


def _codes() -> dict[str, type[KeysteadError]]:
    out: dict[str, type[KeysteadError]] = {}
    todo: list[type[KeysteadError]] = [KeysteadError]
    while todo:
        kind = todo.pop(0)
        out.setdefault(kind.code, kind)
        todo.extend(kind.__subclasses__())
    out["bad_request"] = FormatError  # the general code means "your input", in either direction
    return out


ERROR_CODES: dict[str, type[KeysteadError]] = _codes()
"""Wire code -> class, built from the classes themselves (the one error table)."""
