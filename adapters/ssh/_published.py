"""The published list of imported SSH public keys, signed by the account key.

Why it exists: ``keystead ssh authorized-keys`` runs for sshd with no device and no
passphrase, so it cannot read the ``ssh`` collection (sealed). Device keys are in
the account chain already; the public halves of *imported* keys are published here,
as canonical JSON signed by the account key (only admin devices hold it)::

    {"v": 1, "account": NAME, "seq": N, "time": T, "keys": ["ssh-ed25519 AAAA... comment", ...]}

``seq`` counts up with every publication; a reader remembers the newest it verified,
so a service replaying an older list (one that still lists a removed key) is caught.
Pure logic: bytes in, values out; the service stores the document and the CLI fetches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keystead.core import (
    FormatError,
    SigningKey,
    UnsupportedVersion,
    VerifyKey,
    b64d,
    b64e,
    canonical_json,
    parse_json_object,
)

from ._keys import PublicKey

__all__ = [
    "PURPOSE_PUBLISHED",
    "PublishedKeys",
    "published_seq",
    "sign_published",
    "verify_published",
]

PURPOSE_PUBLISHED = "keystead/v1/ssh/published-keys"
VERSION = 1
MAX_KEYS = 256
MAX_DOC_BYTES = 256 * 1024


@dataclass(frozen=True)
class PublishedKeys:
    """A verified publication: the signed bytes, the signature and what they say."""

    doc: bytes
    signature: bytes
    account: str
    seq: int
    time: int
    keys: tuple[PublicKey, ...]

    def to_json(self) -> dict[str, str]:
        return {"doc": b64e(self.doc), "sig": b64e(self.signature)}


def sign_published(
    account_key: SigningKey, account: str, seq: int, time: int, keys: Sequence[PublicKey]
) -> PublishedKeys:
    """Sign a new publication (admin devices). ``seq`` must exceed the last one."""
    if seq < 1:
        raise ValueError("seq starts at 1")
    lines = sorted({k.line() for k in keys})
    if len(lines) > MAX_KEYS:
        raise FormatError(f"at most {MAX_KEYS} imported keys can be published")
    doc = canonical_json(
        {"v": VERSION, "account": account, "seq": seq, "time": time, "keys": lines}
    )
    return verify_published(
        account_key.verify_key,
        {"doc": b64e(doc), "sig": b64e(account_key.sign(PURPOSE_PUBLISHED, doc))},
        account=account,
    )


def published_seq(obj: object) -> int:
    """The ``seq`` a publication claims, read WITHOUT verifying it: only to keep ``seq``
    increasing past a list the current account key did not sign (one from before an admin
    removal rotated the key). Never a reason to trust its keys."""
    if not isinstance(obj, Mapping):
        raise FormatError("published ssh keys: expected doc and sig")
    body = parse_json_object(
        b64d(obj.get("doc"), what="published ssh keys"), what="published ssh keys"
    )
    seq = body.get("seq")
    if type(seq) is not int or seq < 1:
        raise FormatError("published ssh keys: seq must be a positive integer")
    return seq


def verify_published(account_key: VerifyKey, obj: object, *, account: str) -> PublishedKeys:
    """Verify ``{"doc", "sig"}`` against the account key, then parse the signed bytes."""
    if not isinstance(obj, Mapping) or set(obj) != {"doc", "sig"}:
        raise FormatError("published ssh keys: expected doc and sig")
    doc = b64d(obj.get("doc"), what="published ssh keys")
    if len(doc) > MAX_DOC_BYTES:
        raise FormatError("published ssh keys: too large")
    sig = b64d(obj.get("sig"), size=64, what="published ssh keys signature")
    account_key.verify(PURPOSE_PUBLISHED, doc, sig)
    body = parse_json_object(doc, what="published ssh keys")
    if body.get("v") != VERSION:
        raise UnsupportedVersion(f"published ssh keys version {body.get('v')!r}")
    if set(body) != {"v", "account", "seq", "time", "keys"} or canonical_json(body) != doc:
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
    return PublishedKeys(doc, sig, account, seq, time, keys)
