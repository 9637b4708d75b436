"""What travels between relying parties, devices and the service's ``/v1/confirm`` routes.

No I/O here. A relying-party token is ``RPNAME:SECRET``: the name tells the service
which stored hash to compare against (in constant time), so the service keeps only
``SHA-256(token)``. The spool envelope is written by the *service*, which is the
one party that knows who posted the prompt (an RP token or a signed device
request); a device refuses a prompt whose inside names another RP than the
envelope does. Formats: docs/second_factor.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from keystead.core import b64d, b64e, canonical_json
from keystead.core.errors import Forbidden, FormatError

from ._prompt import (
    MAX_LIFETIME,
    VERSION,
    check_int,
    check_keys,
    check_request_id,
    parse_canonical,
)

__all__ = [
    "CHANNEL",
    "NS_ANSWER",
    "NS_REPORT",
    "NS_REQUEST",
    "NS_RP",
    "Envelope",
    "RequestRecord",
    "check_request_id",
    "check_rp_name",
    "device_rp_name",
    "new_rp_token",
    "rp_of_token",
    "token_hash",
    "token_matches",
]

CHANNEL = "confirm"  # spool channel and collection: prompts are sealed to its key
NS_RP = "confirm.rp"  # record key: RP name; value: {"hash", "created"}
NS_REQUEST = "confirm.req"  # record key: request id; value: RequestRecord
NS_ANSWER = "confirm.ans"  # record key: request id; value: the signed answer bytes
NS_REPORT = "confirm.report"  # record key: request id; value: {"rp", "device", "at"}
ENVELOPE_TYPE = "keystead/v1/confirm/envelope"
MAX_SEALED_BYTES = 16 * 1024
MAX_ENVELOPE_BYTES = 32 * 1024
DEVICE_RP_PREFIX = "device:"
_RP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_SECRET_BYTES = 32


def check_rp_name(name: object) -> str:
    """Names an admin may allow: lower-case letters, digits, '.', '_', '-' (no ':', so
    they can never collide with the ``device:NAME`` a device's own requests use)."""
    if not isinstance(name, str) or not _RP_NAME.fullmatch(name):
        raise FormatError("a relying party name is 1 to 100 of a-z, 0-9, '.', '_', '-'")
    return name


def device_rp_name(device_name: str) -> str:
    """The RP name of a request a live device makes for its own account (e.g. ssh --confirm)."""
    return DEVICE_RP_PREFIX + device_name


def new_rp_token(rp: str) -> str:
    """A fresh token for ``rp``: shown once to the admin, never stored anywhere."""
    return f"{check_rp_name(rp)}:{b64e(secrets.token_bytes(_SECRET_BYTES))}"


def rp_of_token(token: str) -> str:
    """The RP name a token claims (not yet checked against the service's hash)."""
    rp, sep, secret = token.strip().rpartition(":")
    if not sep:
        raise FormatError("a relying party token looks like NAME:SECRET")
    b64d(secret, size=_SECRET_BYTES, what="relying party token")
    return check_rp_name(rp)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token).encode(), stored_hash.encode())


@dataclass(frozen=True)
class Envelope:
    """One spool message of the ``confirm`` channel, as the service wrote it."""

    request_id: str
    rp: str
    expires: int
    sealed: bytes

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "v": VERSION,
                "type": ENVELOPE_TYPE,
                "id": self.request_id,
                "rp": self.rp,
                "expires": self.expires,
                "sealed": b64e(self.sealed),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        obj = parse_canonical(data, MAX_ENVELOPE_BYTES, "confirm envelope")
        check_keys(obj, {"v", "type", "id", "rp", "expires", "sealed"}, ENVELOPE_TYPE)
        if not isinstance(obj["rp"], str):
            raise FormatError("confirm envelope: rp must be a string")
        return cls(
            check_request_id(obj["id"]),
            obj["rp"],
            check_int("expires", obj["expires"]),
            b64d(obj["sealed"], what="sealed prompt"),
        )


@dataclass(frozen=True)
class RequestRecord:
    """What the service keeps about a request: who made it, until when, its spool message."""

    rp: str
    created: int
    expires: int
    spool_id: int

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "rp": self.rp,
                "created": self.created,
                "expires": self.expires,
                "spool": self.spool_id,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestRecord:
        obj = parse_canonical(data, 4096, "confirm request record")
        return cls(obj["rp"], obj["created"], obj["expires"], obj["spool"])


def parse_new_request(obj: dict[str, Any], now: int) -> tuple[str, int, bytes]:
    """The body of ``POST /v1/confirm/{account}/requests``: (request id, expires, sealed)."""
    if obj.get("v") != VERSION or set(obj) != {"v", "id", "expires", "sealed"}:
        raise FormatError("expected {v, id, expires, sealed}")
    expires = check_int("expires", obj["expires"])
    if not now < expires <= now + MAX_LIFETIME:
        raise FormatError(f"expires must be in the next {MAX_LIFETIME} seconds")
    sealed = b64d(obj["sealed"], what="sealed prompt")
    if len(sealed) > MAX_SEALED_BYTES:
        raise FormatError("the sealed prompt is too large")
    return check_request_id(obj["id"]), expires, sealed


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header."""
    if header is None:
        raise Forbidden("this request needs a relying party token or a device signature")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Forbidden("use 'Authorization: Bearer TOKEN'")
    return token.strip()
