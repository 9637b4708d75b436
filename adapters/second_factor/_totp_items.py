"""TOTP credentials as items of the ``totp`` collection, and finding one by name.

The item body is the canonical URI inside a versioned JSON object: the URI is
the format every authenticator already exchanges, and the wrapper leaves room
for fields (a note, an icon) without a new URI dialect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from keystead.core import canonical_json
from keystead.core.errors import FormatError, NotFound, UnsupportedVersion

from ._otpauth import OtpAuth
from ._prompt import parse_canonical
from ._totp import code_at

__all__ = [
    "AmbiguousName",
    "credential_from_item",
    "credential_to_item",
    "find_credential",
    "take_code",
]

ITEM_VERSION = 1
MAX_ITEM_BYTES = 8192


class AmbiguousName(FormatError):
    """A name matches several credentials; the person must say which."""


def credential_to_item(otp: OtpAuth) -> bytes:
    """The bytes stored (encrypted by the core) as one item of the ``totp`` collection."""
    return canonical_json({"v": ITEM_VERSION, "uri": otp.to_uri()})


def credential_from_item(data: bytes) -> OtpAuth:
    """Parse an item body strictly."""
    obj = parse_canonical(data, MAX_ITEM_BYTES, "totp item")
    if obj.get("v") != ITEM_VERSION:
        raise UnsupportedVersion(f"unsupported totp item version {obj.get('v')!r}")
    if set(obj) != {"v", "uri"} or not isinstance(obj["uri"], str):
        raise FormatError("unexpected fields in a totp item")
    return OtpAuth.from_uri(obj["uri"])


def find_credential(credentials: Iterable[OtpAuth], name: str) -> OtpAuth:
    """``keystead totp code NAME``: an exact ``issuer:account`` wins, else a unique
    case-insensitive match on the full name, the issuer or the account."""
    creds = list(credentials)
    exact = [c for c in creds if c.name == name]
    if len(exact) == 1:
        return exact[0]
    folded = name.casefold()
    loose = exact or [
        c
        for c in creds
        if folded in (c.name.casefold(), c.account.casefold(), (c.issuer or "").casefold())
    ]
    if not loose:
        raise NotFound(f"no TOTP credential named {name!r}")
    if len(loose) > 1:
        names = ", ".join(sorted(c.name for c in loose))
        raise AmbiguousName(f"{name!r} matches several credentials: {names}")
    return loose[0]


def take_code(otp: OtpAuth, at: int) -> tuple[str, OtpAuth | None]:
    """The code to show, and for HOTP the credential to store back with the counter
    advanced (an HOTP code shown twice would be refused by the server the second time)."""
    code = code_at(otp, at)
    if otp.kind == "hotp":
        return code, replace(otp, counter=otp.counter + 1)
    return code, None
