"""The message envelope: pure protocol logic, bytes in and values out, no I/O.

On the wire (one spool entry) a message is a core signed envelope
(:class:`keystead.core.envelope.SignedEnvelope`, purpose
``keystead/v2/messaging/envelope``) whose signer is ``ADDRESS/DEVICE_ID``::

    {"v": 1, "purpose": "keystead/v2/messaging/envelope", "signer": "alice@host:port/DEVICE",
     "body": b64(ENVELOPE), "sig": b64(ed25519 signature)}

The signer only says which key to verify with. ENVELOPE is the exact canonical-JSON
bytes the sender's device signed, parsed only after the signature checks (message
format 2)::

    {"v": 2, "id": b64(16 random bytes), "from": ADDRESS, "device": DEVICE_ID,
     "to": ADDRESS, "time": UNIX_SECONDS, "group": null | {"owner": ADDRESS, "id": HEX32},
     "key": b64(message key sealed to the recipient's "messages" key or to the group key),
     "body": b64(ChaCha20-Poly1305 under the message key)}

A group is named on the wire by its owner and its opaque id (the group key is
``messages/group/ID``); its name is only in the owner's encrypted records. The
body's associated data binds the id, sender, device, time and group, so a body
cannot be moved under another header; the signature binds everything, the
recipient included. A group message is encrypted once: every member's envelope
carries the same ``key`` and ``body`` and differs only in ``to`` (and so in its
signature). Format 1 (a wrapper of its own, ``{"v": 1, "from", "device",
"envelope", "sig"}``, and groups by name) is refused with a line saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from keystead.core import (
    FormatError,
    InvalidSignature,
    SigningKey,
    UnsupportedVersion,
    VerifyKey,
    b64d,
    b64e,
    canonical_json,
    open_sealed,
    parse_json_object,
    random_bytes,
    seal,
)
from keystead.core.address import Address
from keystead.core.envelope import SignedEnvelope

from . import _labels

__all__ = [
    "NAME",
    "OLD_FORMAT",
    "VERSION",
    "check_group_name",
    "Envelope",
    "Group",
    "Wire",
    "body_ad",
    "make_envelope",
    "open_body",
    "parse_address",
    "parse_wire",
    "seal_body",
    "verify_envelope",
]

VERSION = 2
ID_SIZE = 16
MAX_TEXT = 256 * 1024
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
"""What a person may call a group (kept only in the owner's encrypted records)."""
_GROUP_ID = re.compile(r"^[0-9a-f]{32}$")
_OLD_WIRE_KEYS = {"v", "from", "device", "envelope", "sig"}
OLD_FORMAT = (
    "message format 1, which this Keystead no longer reads: the sender must upgrade "
    "Keystead and send again"
)
_ENVELOPE_KEYS = {"v", "id", "from", "device", "to", "time", "group", "key", "body"}
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_address(address: str) -> tuple[str, str | None]:
    """``name`` or ``name@host[:port]`` -> (name, host[:port] or None). Strict: the core's
    one address grammar (:class:`keystead.core.address.Address`)."""
    if not isinstance(address, str):
        raise FormatError("an account address is text")
    if "@" not in address:
        return Address(address, "localhost").name, None
    parsed = Address.parse(address)
    return parsed.name, parsed.netloc


def _address(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"envelope: {what} must be an address")
    name, host = parse_address(value)
    if host is None:
        raise FormatError(f"envelope: {what} must be name@host")
    return value


def check_group_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise FormatError(f"invalid group name {name!r}")
    return name


@dataclass(frozen=True)
class Group:
    """A group: its owner's address and its opaque id (the key is ``messages/group/ID``)."""

    owner: str
    id: str

    def __post_init__(self) -> None:
        _address(self.owner, "group owner")
        if not isinstance(self.id, str) or not _GROUP_ID.match(self.id):
            raise FormatError("invalid group id")

    @classmethod
    def of_key(cls, owner: str, key: str) -> Group:
        if not key.startswith(_labels.GROUP_PREFIX):
            raise FormatError("not a group key")
        return cls(owner, key[len(_labels.GROUP_PREFIX) :])

    @property
    def key(self) -> str:
        return _labels.GROUP_PREFIX + self.id

    def to_json(self) -> dict[str, str]:
        return {"owner": self.owner, "id": self.id}

    def __str__(self) -> str:
        return f"{self.id}@{self.owner}"


@dataclass(frozen=True)
class Wire:
    """One spool entry, parsed but not yet verified: who claims to have signed it."""

    sender: str
    device: str
    signed: SignedEnvelope


@dataclass(frozen=True)
class Envelope:
    """A verified envelope (only :func:`verify_envelope` and :func:`make_envelope` build one)."""

    id: str
    sender: str
    device: str
    to: str
    time: int
    group: Group | None
    sealed_key: bytes
    body: bytes
    raw: bytes

    @property
    def ad(self) -> bytes:
        return body_ad(self.id, self.sender, self.device, self.time, self.group)


def body_ad(message_id: str, sender: str, device: str, time: int, group: Group | None) -> bytes:
    """The body's associated data: the same for every recipient of one message."""
    return (
        _labels.BODY_AD
        + b"\x00"
        + canonical_json(
            {
                "v": VERSION,
                "id": message_id,
                "from": sender,
                "device": device,
                "time": time,
                "group": None if group is None else group.to_json(),
            }
        )
    )


def new_message_id() -> str:
    return b64e(random_bytes(ID_SIZE))


def seal_body(message_key: bytes, text: str, ad: bytes) -> bytes:
    """Encrypt the message text (inside a versioned object) under the message key."""
    if len(text.encode()) > MAX_TEXT:
        raise FormatError(f"messages are {MAX_TEXT // 1024} KiB of text at most")
    return seal(message_key, canonical_json({"v": VERSION, "text": text}), ad)


def open_body(message_key: bytes, body: bytes, ad: bytes) -> str:
    """Decrypt and parse a body; ``DecryptionFailed`` or ``FormatError`` on any fault."""
    obj = parse_json_object(open_sealed(message_key, body, ad), what="message body")
    if obj.get("v") != VERSION:
        raise UnsupportedVersion("message body: unsupported version")
    text = obj.get("text")
    if set(obj) != {"v", "text"} or not isinstance(text, str):
        raise FormatError("message body: unexpected fields")
    return text


def make_envelope(
    signing_key: SigningKey,
    *,
    message_id: str,
    sender: str,
    device: str,
    to: str,
    time: int,
    group: Group | None,
    sealed_key: bytes,
    body: bytes,
) -> bytes:
    """Sign an envelope with the sender's device key; returns the spool entry's bytes."""
    _address(sender, "from")
    _address(to, "to")
    raw = canonical_json(
        {
            "v": VERSION,
            "id": message_id,
            "from": sender,
            "device": device,
            "to": to,
            "time": time,
            "group": None if group is None else group.to_json(),
            "key": b64e(sealed_key),
            "body": b64e(body),
        }
    )
    return SignedEnvelope.sign(
        signing_key, purpose=_labels.ENVELOPE, signer=f"{sender}/{device}", body=raw
    ).to_bytes()


def parse_wire(data: bytes) -> Wire:
    """Parse a spool entry strictly; says only whose key to verify with. A message of
    format 1 is refused with :data:`OLD_FORMAT`."""
    obj = parse_json_object(data, what="message")
    if set(obj) == _OLD_WIRE_KEYS and obj.get("v") == 1:
        raise UnsupportedVersion(OLD_FORMAT)
    signed = SignedEnvelope.from_bytes(data, purpose=_labels.ENVELOPE)
    sender, _, device = signed.signer.rpartition("/")
    if not _DEVICE_ID.match(device):
        raise FormatError("message: invalid device id")
    return Wire(_address(sender, "from"), device, signed)


def sealed_key_of(data: bytes) -> bytes:
    """The sealed-key record a spool entry carries, read without verifying the sender (what
    the service checks before storing: that it is sealed to the current epoch)."""
    obj = parse_json_object(parse_wire(data).signed.unverified_body(), what="envelope")
    return b64d(obj.get("key"), what="sealed key")


def verify_envelope(wire: Wire, key: VerifyKey) -> Envelope:
    """Verify the signature over the exact envelope bytes, then parse them strictly."""
    raw = wire.signed.verify(key)
    obj = parse_json_object(raw, what="envelope")
    if obj.get("v") != VERSION:
        raise UnsupportedVersion(
            f"envelope of format {obj.get('v')!r}; this Keystead reads format {VERSION}"
        )
    if set(obj) != _ENVELOPE_KEYS:
        raise FormatError("envelope: unexpected fields")
    if canonical_json(obj) != raw:
        raise FormatError("envelope: not canonical JSON")
    if obj["from"] != wire.sender or obj["device"] != wire.device:
        raise InvalidSignature()  # signed by one device, labelled as another
    time = obj["time"]
    if not isinstance(time, int) or isinstance(time, bool) or time < 0:
        raise FormatError("envelope: invalid time")
    b64d(obj["id"], size=ID_SIZE, what="message id")
    return Envelope(
        obj["id"],
        wire.sender,
        wire.device,
        _address(obj["to"], "to"),
        time,
        _group(obj["group"]),
        b64d(obj["key"], what="sealed key"),
        b64d(obj["body"], what="body"),
        raw,
    )


def _group(value: Any) -> Group | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"owner", "id"}:
        raise FormatError("envelope: invalid group")
    return Group(value["owner"], value["id"])
