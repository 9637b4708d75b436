"""The published list of imported SSH public keys, signed by the account key.

Why it exists: ``keystead ssh authorized-keys`` runs for sshd with no device and no
passphrase, so it cannot read the ``ssh`` collection (sealed). Device keys are in
the account chain already; the public halves of *imported* keys are published here,
in a :class:`keystead.core.envelope.SignedEnvelope` (purpose
``keystead/v2/ssh/published-keys``) signed by the account key (only admin devices hold
it). The signer is ``account-key/GENERATION``, the chain's account-key generation that
signed; the body is canonical JSON::

    {"v": 2, "account": NAME, "seq": N, "time": T, "keys": ["ssh-ed25519 AAAA... comment", ...]}

``seq`` counts up with every publication; a reader remembers the newest it verified,
so a service replaying an older list (one that still lists a removed key) is caught.
A list signed by an older generation (before an admin removal rotated the key) is
refused as :class:`OlderAccountKey`; a version 1 list (``{"doc", "sig"}``, from before
the envelope) is refused with :data:`OLD_FORMAT`, but its ``seq`` still counts for the
next publication (:func:`published_seq`).
Pure logic: bytes in, values out; the service stores the envelope and the CLI fetches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keystead.core import (
    FormatError,
    InvalidSignature,
    SigningKey,
    UnsupportedVersion,
    VerifyKey,
    b64d,
    canonical_json,
    parse_json_object,
)
from keystead.core.envelope import SignedEnvelope

from ._keys import PublicKey

__all__ = [
    "OLD_FORMAT",
    "PURPOSE_PUBLISHED",
    "OlderAccountKey",
    "PublishedKeys",
    "published_seq",
    "sign_published",
    "verify_published",
]

PURPOSE_PUBLISHED = "keystead/v2/ssh/published-keys"
VERSION = 2
MAX_KEYS = 256
MAX_DOC_BYTES = 256 * 1024
OLD_FORMAT = (
    "the imported ssh keys' list is of format 1, which this Keystead no longer reads: "
    "run `keystead ssh publish` on an admin device"
)
_BODY_KEYS = {"v", "account", "seq", "time", "keys"}
_SIGNER = re.compile(r"account-key/(0|[1-9][0-9]{0,8})")
_V1_KEYS = {"doc", "sig"}


class OlderAccountKey(InvalidSignature):
    """The list is signed by an account key an admin removal has since rotated away (the
    removed admin still holds it): it counts as no list until an admin publishes again."""


def _signer(generation: int) -> str:
    return f"account-key/{generation}"


@dataclass(frozen=True)
class PublishedKeys:
    """A verified publication: the envelope as signed and what its body says."""

    envelope: SignedEnvelope
    account: str
    generation: int
    seq: int
    time: int
    keys: tuple[PublicKey, ...]

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = parse_json_object(self.envelope.to_bytes(), what="envelope")
        return obj


def sign_published(
    account_key: SigningKey,
    generation: int,
    account: str,
    seq: int,
    time: int,
    keys: Sequence[PublicKey],
) -> PublishedKeys:
    """Sign a new publication (admin devices) with the account key of ``generation``.
    ``seq`` must exceed the last one."""
    if seq < 1:
        raise ValueError("seq starts at 1")
    lines = sorted({k.line() for k in keys})
    if len(lines) > MAX_KEYS:
        raise FormatError(f"at most {MAX_KEYS} imported keys can be published")
    doc = canonical_json(
        {"v": VERSION, "account": account, "seq": seq, "time": time, "keys": lines}
    )
    if len(doc) > MAX_DOC_BYTES:
        raise FormatError("published ssh keys: too large")
    envelope = SignedEnvelope.sign(
        account_key, purpose=PURPOSE_PUBLISHED, signer=_signer(generation), body=doc
    )
    wire = parse_json_object(envelope.to_bytes(), what="envelope")
    return verify_published(account_key.verify_key, generation, wire, account=account)


def _envelope(obj: object) -> SignedEnvelope:
    """The envelope of a stored or served publication (a JSON object), not yet verified;
    a version 1 list is refused with :data:`OLD_FORMAT`."""
    if not isinstance(obj, Mapping):
        raise FormatError("published ssh keys: expected a signed envelope")
    if set(obj) == _V1_KEYS:
        raise UnsupportedVersion(OLD_FORMAT)
    try:
        raw = canonical_json(dict(obj))
    except (TypeError, ValueError) as e:
        raise FormatError("published ssh keys: not a signed envelope") from e
    return SignedEnvelope.from_bytes(raw, purpose=PURPOSE_PUBLISHED)


def published_seq(obj: object) -> int:
    """The ``seq`` a publication claims, read WITHOUT verifying it: only to keep ``seq``
    increasing past a list the current account key did not sign (one from before an admin
    removal rotated the key, or a version 1 list). Never a reason to trust its keys."""
    if isinstance(obj, Mapping) and set(obj) == _V1_KEYS:
        doc = b64d(obj.get("doc"), what="published ssh keys")
    else:
        doc = _envelope(obj).unverified_body()
    body = parse_json_object(doc, what="published ssh keys")
    seq = body.get("seq")
    if type(seq) is not int or seq < 1:
        raise FormatError("published ssh keys: seq must be a positive integer")
    return seq


def verify_published(
    account_key: VerifyKey, generation: int, obj: object, *, account: str
) -> PublishedKeys:
    """Verify the envelope against the account key of ``generation`` (the chain's current
    one), then parse its body. A list signed by an older generation raises
    :class:`OlderAccountKey`; any other bad signature ``InvalidSignature``."""
    envelope = _envelope(obj)
    m = _SIGNER.fullmatch(envelope.signer)
    if m is None:
        raise FormatError("published ssh keys: the signer must be account-key/GENERATION")
    signed_by = int(m.group(1))
    if signed_by < generation:
        raise OlderAccountKey(
            f"the imported ssh keys' list is signed by account key generation {signed_by}, "
            f"rotated since (now {generation})"
        )
    if signed_by != generation:
        raise InvalidSignature(
            f"the imported ssh keys' list names account key generation {signed_by}, "
            f"which the chain does not have (it is at {generation})"
        )
    doc = envelope.verify(account_key)
    if len(doc) > MAX_DOC_BYTES:
        raise FormatError("published ssh keys: too large")
    body = parse_json_object(doc, what="published ssh keys")
    if body.get("v") != VERSION:
        raise UnsupportedVersion(
            f"published ssh keys of format {body.get('v')!r}; this Keystead reads format {VERSION}"
        )
    if set(body) != _BODY_KEYS or canonical_json(body) != doc:
        raise FormatError("published ssh keys: unexpected fields or not canonical")
    seq, time, lines = body["seq"], body["time"], body["keys"]
    if type(seq) is not int or type(time) is not int or seq < 1:
        raise FormatError("published ssh keys: seq and time must be positive integers")
    if body["account"] != account:
        raise FormatError("published ssh keys are for another account")
    if (
        not isinstance(lines, list)
        or len(lines) > MAX_KEYS
        or not all(isinstance(x, str) for x in lines)
    ):
        raise FormatError("published ssh keys: keys must be a list of lines")
    keys = tuple(PublicKey.from_line(x) for x in lines)
    return PublishedKeys(envelope, account, generation, seq, time, keys)
