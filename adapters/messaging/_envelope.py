"""The message envelope: pure protocol logic, bytes in and values out, no I/O.

On the wire (one spool entry) a message is canonical JSON::

    {"v": 1, "from": "alice@host:port", "device": DEVICE_ID,
     "envelope": b64(ENVELOPE), "sig": b64(ed25519 signature)}

``from`` and ``device`` outside only say which key to verify with. ENVELOPE
is the exact canonical-JSON bytes the sender's device signed (purpose
``keystead/v1/messaging/envelope``) and is parsed only after the signature
checks::

    {"v": 1, "id": b64(16 random bytes), "from": ADDRESS, "device": DEVICE_ID,
     "to": ADDRESS, "time": UNIX_SECONDS, "group": null | {"owner": ADDRESS, "name": NAME},
     "key": b64(message key sealed to the recipient's "messages" key or to the group key),
     "body": b64(ChaCha20-Poly1305 under the message key)}

The body's associated data binds the id, sender, device, time and group, so a
body cannot be moved under another header; the signature binds everything,
the recipient included. A group message is encrypted once: every member's
envelope carries the same ``key`` and ``body`` and differs only in ``to`` (and
so in its signature).
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

from . import _labels

__all__ = [
    "VERSION",
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

VERSION = 1
ID_SIZE = 16
MAX_TEXT = 256 * 1024
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_WIRE_KEYS = {"v", "from", "device", "envelope", "sig"}
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


@dataclass(frozen=True)
class Group:
    """A group: its owner's address and its name (the key is ``messages/group/NAME``)."""

    owner: str
    name: str

    def __post_init__(self) -> None:
        _address(self.owner, "group owner")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise FormatError(f"invalid group name {self.name!r}")

    @property
    def key(self) -> str:
        return _labels.GROUP_PREFIX + self.name

    def to_json(self) -> dict[str, str]:
        return {"owner": self.owner, "name": self.name}

    def __str__(self) -> str:
        return f"{self.name}@{self.owner}"


@dataclass(frozen=True)
class Wire:
    """One spool entry, parsed but not yet verified."""

    sender: str
    device: str
    envelope: bytes
    signature: bytes


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
    sig = signing_key.sign(_labels.ENVELOPE, raw)
    return canonical_json(
        {"v": VERSION, "from": sender, "device": device, "envelope": b64e(raw), "sig": b64e(sig)}
    )


def parse_wire(data: bytes) -> Wire:
    """Parse a spool entry strictly; says only whose key to verify with."""
    obj = parse_json_object(data, what="message")
    if obj.get("v") != VERSION:
        raise UnsupportedVersion("message: unsupported version")
    if set(obj) != _WIRE_KEYS:
        raise FormatError("message: unexpected fields")
    device = obj["device"]
    if not isinstance(device, str) or not _DEVICE_ID.match(device):
        raise FormatError("message: invalid device id")
    return Wire(
        _address(obj["from"], "from"),
        device,
        b64d(obj["envelope"], what="envelope"),
        b64d(obj["sig"], size=64, what="sig"),
    )


def sealed_key_of(data: bytes) -> bytes:
    """The sealed-key record a spool entry carries, read without verifying the sender (what
    the service checks before storing: that it is sealed to the current epoch)."""
    obj = parse_json_object(parse_wire(data).envelope, what="envelope")
    return b64d(obj.get("key"), what="sealed key")


def verify_envelope(wire: Wire, key: VerifyKey) -> Envelope:
    """Verify the signature over the exact envelope bytes, then parse them strictly."""
    key.verify(_labels.ENVELOPE, wire.envelope, wire.signature)
    obj = parse_json_object(wire.envelope, what="envelope")
    if obj.get("v") != VERSION:
        raise UnsupportedVersion("envelope: unsupported version")
    if set(obj) != _ENVELOPE_KEYS:
        raise FormatError("envelope: unexpected fields")
    if canonical_json(obj) != wire.envelope:
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
        wire.envelope,
    )


def _group(value: Any) -> Group | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"owner", "name"}:
        raise FormatError("envelope: invalid group")
    return Group(value["owner"], value["name"])
