"""Signed requests: how a device authenticates to the service.

A request carries the device (``account/device-id``), the time, a random nonce,
the SHA-256 of the body and an Ed25519 signature over all of them plus method,
path and the service origin (``scheme://host[:port]``), so a request a device
signed for one service (a peer's, for documents or messages) cannot be replayed
at another. The service refuses a device that is not live, a time outside the
window, a nonce it has seen, and a body that does not match its digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import labels
from ._encoding import b64d, b64e
from .crypto import SigningKey, VerifyKey, random_bytes
from .errors import FormatError, InvalidSignature

__all__ = [
    "HEADER_DEVICE",
    "RequestAuth",
    "origin_of",
    "parse_auth",
    "request_message",
    "sign_request",
]

HEADER_DEVICE = "keystead-device"
HEADER_TIME = "keystead-time"
HEADER_NONCE = "keystead-nonce"
HEADER_DIGEST = "keystead-content-sha256"
HEADER_SIGNATURE = "keystead-signature"
MAX_SKEW = 120


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased: what a request signature names."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FormatError(f"not a service URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_message(
    method: str,
    origin: str,
    path: str,
    digest: str,
    time: int,
    nonce: str,
    account: str,
    device: str,
) -> bytes:
    return "\n".join(
        [method.upper(), origin, path, digest, str(time), nonce, account, device]
    ).encode()


def sign_request(
    key: SigningKey,
    *,
    account: str,
    device: str,
    method: str,
    origin: str,
    path: str,
    body: bytes,
    time: int,
) -> dict[str, str]:
    """Headers that authenticate one request to the service at ``origin``."""
    nonce = b64e(random_bytes(16))
    digest = hashlib.sha256(body).hexdigest()
    message = request_message(method, origin, path, digest, time, nonce, account, device)
    sig = key.sign(labels.REQUEST, message)
    return {
        HEADER_DEVICE: f"{account}/{device}",
        HEADER_TIME: str(time),
        HEADER_NONCE: nonce,
        HEADER_DIGEST: digest,
        HEADER_SIGNATURE: b64e(sig),
    }


@dataclass(frozen=True)
class RequestAuth:
    """The parsed authentication headers of a request, not yet verified."""

    account: str
    device: str
    time: int
    nonce: str
    digest: str
    signature: bytes

    def verify(
        self,
        key: VerifyKey,
        *,
        method: str,
        origin: str,
        path: str,
        body: bytes,
        now: int,
        max_skew: int = MAX_SKEW,
    ) -> None:
        """Check digest, time window and signature (the nonce is the caller's to check)."""
        if hashlib.sha256(body).hexdigest() != self.digest:
            raise FormatError("the request body does not match its digest")
        if abs(now - self.time) > max_skew:
            raise InvalidSignature("request time is outside the allowed window")
        key.verify(
            labels.REQUEST,
            request_message(
                method,
                origin.lower(),
                path,
                self.digest,
                self.time,
                self.nonce,
                self.account,
                self.device,
            ),
            self.signature,
        )


def parse_auth(headers: dict[str, str]) -> RequestAuth | None:
    """Parse the headers; ``None`` when the request carries none; ``FormatError`` if malformed."""
    who = headers.get(HEADER_DEVICE)
    if who is None:
        return None
    account, sep, device = who.partition("/")
    if not sep or not account or not device:
        raise FormatError("malformed device header")
    try:
        time = int(headers.get(HEADER_TIME, ""))
    except ValueError:
        raise FormatError("malformed time header") from None
    nonce = headers.get(HEADER_NONCE, "")
    b64d(nonce, size=16, what="nonce")
    digest = headers.get(HEADER_DIGEST, "")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise FormatError("malformed content digest header")
    sig = b64d(headers.get(HEADER_SIGNATURE, ""), size=64, what="request signature")
    return RequestAuth(account, device, time, nonce, digest, sig)
