"""The signed envelope: exact bytes signed for one purpose by a named signer, verified before
they are parsed.

Adapters that hand signed messages around (a message between accounts, a published
list, an answer) use this one type instead of each writing its own signer and
verifier. On the wire (canonical JSON, version 1)::

    {"v": 1, "purpose": PURPOSE, "signer": SIGNER, "body": B64(BODY), "sig": B64(SIG)}

``SIG`` is the Ed25519 signature, with the purpose-bound signing of
:mod:`keystead.core.crypto` (purpose ``PURPOSE``), over::

    "keystead-envelope/1" 0x0A  SIGNER 0x0A  BODY

so a signature binds the envelope version, the purpose, who claims to have signed
and the exact body bytes; nothing signed for one purpose or signer verifies as another.
``SIGNER`` only says which key to verify with (the purpose's owner defines its syntax:
printable ASCII, no spaces, at most 512 characters). ``BODY`` is whatever the purpose
defines (usually canonical JSON with its own version); :meth:`SignedEnvelope.verify`
returns it only once the signature checks, and the caller parses it after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._encoding import b64d, b64e, canonical_json, parse_json_object
from .crypto import SigningKey, VerifyKey
from .errors import FormatError, UnsupportedVersion

__all__ = ["ENVELOPE_VERSION", "MAX_BODY", "SignedEnvelope"]

ENVELOPE_VERSION = 1
MAX_BODY = 1024 * 1024
_FIELDS = {"v", "purpose", "signer", "body", "sig"}
_SIGNER = re.compile(r"[\x21-\x7e]{1,512}")
_PURPOSE = re.compile(r"keystead/v[0-9]+/[a-z0-9_./-]{1,200}")
_DOMAIN = b"keystead-envelope/1\n"


def _signed_bytes(signer: str, body: bytes) -> bytes:
    return _DOMAIN + signer.encode() + b"\n" + body


def _check(purpose: object, signer: object) -> tuple[str, str]:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise FormatError("signed envelope: invalid purpose")
    if not isinstance(signer, str) or not _SIGNER.fullmatch(signer):
        raise FormatError("signed envelope: invalid signer")
    return purpose, signer


@dataclass(frozen=True)
class SignedEnvelope:
    """An envelope as it travels; :meth:`verify` is the only way to its body."""

    purpose: str
    signer: str
    _body: bytes
    signature: bytes

    @classmethod
    def sign(cls, key: SigningKey, *, purpose: str, signer: str, body: bytes) -> SignedEnvelope:
        _check(purpose, signer)
        if len(body) > MAX_BODY:
            raise FormatError("signed envelope: body too large")
        return cls(purpose, signer, body, key.sign(purpose, _signed_bytes(signer, body)))

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "v": ENVELOPE_VERSION,
                "purpose": self.purpose,
                "signer": self.signer,
                "body": b64e(self._body),
                "sig": b64e(self.signature),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes, *, purpose: str) -> SignedEnvelope:
        """Parse the wrapper strictly (nothing is verified yet); an envelope made for
        another purpose, or of another version, is refused here."""
        if len(raw) > 2 * MAX_BODY:
            raise FormatError("signed envelope too large")
        obj = parse_json_object(raw, what="signed envelope")
        if obj.get("v") != ENVELOPE_VERSION:
            raise UnsupportedVersion(
                f"signed envelope of version {obj.get('v')!r}; this Keystead reads version "
                f"{ENVELOPE_VERSION}"
            )
        if set(obj) != _FIELDS:
            raise FormatError("signed envelope: unexpected fields")
        got, signer = _check(obj["purpose"], obj["signer"])
        if got != purpose:
            raise FormatError(f"signed envelope for {got!r}, expected {purpose!r}")
        body = b64d(obj["body"], what="signed envelope body")
        if len(body) > MAX_BODY:
            raise FormatError("signed envelope: body too large")
        return cls(got, signer, body, b64d(obj["sig"], size=64, what="signed envelope sig"))

    def verify(self, key: VerifyKey) -> bytes:
        """The exact body bytes, once ``key`` verifies the signature (``InvalidSignature``
        otherwise). Parse them only after this."""
        key.verify(self.purpose, _signed_bytes(self.signer, self._body), self.signature)
        return self._body

    def unverified_body(self) -> bytes:
        """The body WITHOUT checking the signature: only for a party that cannot verify
        and decides nothing on it (the service reading which key a message is sealed to,
        before storing it for a recipient who verifies)."""
        return self._body
