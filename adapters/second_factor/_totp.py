"""HOTP/TOTP codes (RFC 4226, RFC 6238), Steam Guard codes, and a once-only verifier.

Steam Guard is RFC 6238 with HMAC-SHA1 and 30-second steps, but the truncated
31-bit value is written as 5 characters of Steam's 26-letter alphabet (least
significant first) instead of decimal digits.

Codes come from pyotp, with its 112-bit floor lowered to 80 bits: services
really issue 80-bit secrets, and refusing them only pushes people to another
app. Time is always supplied by the caller, so tests and verifiers never read
the clock behind anyone's back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

import pyotp
from keystead.core.errors import VerificationError

from ._otpauth import MIN_SECRET_BYTES, STEAM_DIGITS, Algorithm, OtpAuth, encode_secret

__all__ = [
    "CodeRejected",
    "CodeReplayed",
    "TotpVerifier",
    "code_at",
    "hotp",
    "steam_code",
    "time_step",
    "totp",
    "verify_totp",
]

_DIGESTS: dict[str, Callable[..., object]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}


STEAM_ALPHABET = "23456789BCDFGHJKMNPQRTVWXY"


class CodeRejected(VerificationError):
    """A one-time code did not verify (wrong, malformed or outside the allowed window)."""

    def __init__(self, message: str = "code rejected") -> None:
        super().__init__(message)


class CodeReplayed(CodeRejected):
    """A code that was right, but for a time step already accepted (RFC 6238 section 5.2)."""

    def __init__(self, message: str = "code already used") -> None:
        super().__init__(message)


class _HOTP(pyotp.HOTP):
    min_secret_length_bits = MIN_SECRET_BYTES * 8


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: Algorithm = "SHA1") -> str:
    """The RFC 4226 code for ``counter``."""
    if not 0 <= counter < 2**64:
        raise ValueError("the counter must fit in 64 bits")
    if digits not in (6, 7, 8):
        raise ValueError("digits must be 6, 7 or 8")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES * 8} bits")
    return _HOTP(encode_secret(secret), digits=digits, digest=_DIGESTS[algorithm]).at(counter)


def steam_code(secret: bytes, counter: int) -> str:
    """The Steam Guard code for time step ``counter`` (5 characters of ``STEAM_ALPHABET``)."""
    if not 0 <= counter < 2**64:
        raise ValueError("the counter must fit in 64 bits")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES * 8} bits")
    mac = hmac.new(secret, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF  # RFC 4226 5.3
    chars = []
    for _ in range(STEAM_DIGITS):
        value, index = divmod(value, len(STEAM_ALPHABET))
        chars.append(STEAM_ALPHABET[index])
    return "".join(chars)


def _code_for_step(otp: OtpAuth, step: int) -> str:
    if otp.encoder == "steam":
        return steam_code(otp.secret, step)
    return hotp(otp.secret, step, digits=otp.digits, algorithm=otp.algorithm)


def time_step(at: int, period: int = 30) -> int:
    """The RFC 6238 time step (T0 = 0) that unix time ``at`` falls in."""
    if at < 0:
        raise ValueError("time before 1970 has no time step")
    return at // period


def totp(
    secret: bytes, at: int, *, period: int = 30, digits: int = 6, algorithm: Algorithm = "SHA1"
) -> str:
    """The RFC 6238 code at unix time ``at``."""
    return hotp(secret, time_step(at, period), digits=digits, algorithm=algorithm)


def code_at(otp: OtpAuth, at: int) -> str:
    """The code a person types now: the TOTP at ``at``, or the HOTP at the stored counter."""
    if otp.kind == "hotp":
        return hotp(otp.secret, otp.counter, digits=otp.digits, algorithm=otp.algorithm)
    return _code_for_step(otp, time_step(at, otp.period))


def verify_totp(otp: OtpAuth, code: str, now: int, last_step: int | None, *, drift: int = 1) -> int:
    """Check ``code`` at ``now`` and return the time step it matched.

    Accepts steps within ``drift`` of now, but only steps after ``last_step``
    (the last one accepted for this secret): the caller stores the returned step
    and passes it back next time, which makes every code single-use.
    """
    if otp.kind != "totp":
        raise ValueError("verify_totp needs a totp credential")
    if not 0 <= drift <= 10:
        raise ValueError("drift must be between 0 and 10 steps")
    alphabet = STEAM_ALPHABET if otp.encoder == "steam" else "0123456789"
    if len(code) != otp.digits or not all(c in alphabet for c in code):
        raise CodeRejected()
    current = time_step(now, otp.period)
    replayed = False
    for step in range(max(0, current - drift), current + drift + 1):
        expected = _code_for_step(otp, step)
        if hmac.compare_digest(expected.encode(), code.encode()):
            if last_step is not None and step <= last_step:
                replayed = True
                continue
            return step
    raise CodeReplayed() if replayed else CodeRejected()


@dataclass
class TotpVerifier:
    """Once-only TOTP verification for a relying party that keeps its state in memory.

    Keys are the relying party's own ids for each enrolled secret. A stateless
    service stores the step :func:`verify_totp` returns in its database instead.
    """

    drift: int = 1
    _last: dict[str, int] = field(default_factory=dict, repr=False)

    def verify(self, key_id: str, otp: OtpAuth, code: str, now: int) -> None:
        """Raise :class:`CodeRejected` unless ``code`` is right and not used before."""
        step = verify_totp(otp, code, now, self._last.get(key_id), drift=self.drift)
        self._last[key_id] = step

    def last_step(self, key_id: str) -> int | None:
        """The last accepted time step for ``key_id`` (None before the first)."""
        return self._last.get(key_id)
