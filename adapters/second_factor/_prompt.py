"""The confirmation prompt: what a relying party asks, as canonical versioned bytes.

It travels encrypted to the account's ``confirm`` collection; an answer signs
the SHA-256 of these exact bytes, so parsing is strict (canonical JSON, exact
fields, bounded text without control or bidi characters that could make a
message read differently on the phone than the RP meant).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from keystead.core import canonical_json, parse_json_object
from keystead.core.errors import FormatError, UnsupportedVersion

__all__ = [
    "MAX_CHOICES",
    "MAX_LIFETIME",
    "MIN_CHOICES",
    "NUMBERS",
    "PROMPT_TYPE",
    "VERSION",
    "Prompt",
    "check_int",
    "check_keys",
    "check_text",
    "parse_canonical",
]

PROMPT_TYPE = "keystead/v1/confirm/prompt"
VERSION = 1
REQUEST_ID_BYTES = 16
_REQUEST_ID = re.compile(f"[0-9a-f]{{{2 * REQUEST_ID_BYTES}}}")


def check_request_id(value: object) -> str:
    """Request ids are lowercase hex: safe in URLs and as a CLI argument (never '-...')."""
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise FormatError("a request id is 32 lowercase hex digits")
    return value


MAX_LIFETIME = 3600
MAX_RP_CHARS = 100
MAX_MESSAGE_CHARS = 1000
MAX_PROMPT_BYTES = 8192
NUMBERS = range(10, 100)  # two digits: quick to compare
MIN_CHOICES = 9  # a blind tap on the device wins at most 1 time in 9
MAX_CHOICES = 20


def parse_canonical(data: bytes, max_size: int, what: str) -> dict[str, Any]:
    """Parse bytes that must be a canonical JSON object no larger than ``max_size``: one
    value has one spelling, so a digest or signature over it cannot be dodged by reformatting."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("expected bytes")
    if len(data) > max_size:
        raise FormatError(f"{what}: too large")
    value = parse_json_object(bytes(data), what=what)
    if canonical_json(value) != data:
        raise FormatError(f"{what}: not in canonical form")
    return value


def check_text(what: str, text: object, limit: int, *, newlines: bool) -> str:
    """Refuse controls and invisible format characters (bidi overrides can fake a message)."""
    if not isinstance(text, str) or not text or len(text) > limit or text != text.strip():
        raise FormatError(f"{what} must be 1 to {limit} characters, without outer spaces")
    for ch in text:
        if ch == "\n" and newlines:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise FormatError(f"{what} contains a control or format character")
    return text


def check_int(what: str, value: object) -> int:
    """JSON gives bools where ints are expected; refuse them, and negatives."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{what} must be a non-negative integer")
    return value


def check_keys(obj: dict[str, object], keys: set[str], type_: str) -> None:
    """Version first (an unknown one is a hard error), then exactly the expected fields."""
    if obj.get("v") != VERSION:
        raise UnsupportedVersion(f"unsupported version {obj.get('v')!r}")
    if set(obj) != keys or obj.get("type", type_) != type_:
        raise FormatError("unexpected fields")


@dataclass(frozen=True)
class Prompt:
    """One confirmation request, valid from birth; its bytes are canonical JSON."""

    request_id: str
    rp: str
    message: str
    created: int
    expires: int
    number: int | None
    choices: tuple[int, ...]

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_text("the relying party name", self.rp, MAX_RP_CHARS, newlines=False)
        check_text("the message", self.message, MAX_MESSAGE_CHARS, newlines=True)
        check_int("created", self.created)
        check_int("expires", self.expires)
        if not 0 < self.expires - self.created <= MAX_LIFETIME:
            raise FormatError(f"a prompt lives 1 to {MAX_LIFETIME} seconds")
        if not isinstance(self.choices, tuple):
            raise FormatError("choices must be a tuple")
        if self.number is None:
            if self.choices:
                raise FormatError("choices without number matching")
            return
        if check_int("number", self.number) not in NUMBERS:
            raise FormatError("the number must have two digits")
        if not MIN_CHOICES <= len(self.choices) <= MAX_CHOICES or len(set(self.choices)) != len(
            self.choices
        ):
            raise FormatError(
                f"number matching needs {MIN_CHOICES} to {MAX_CHOICES} distinct choices"
            )
        if any(check_int("a choice", c) not in NUMBERS for c in self.choices):
            raise FormatError("every choice must have two digits")
        if self.number not in self.choices:
            raise FormatError("the choices must include the number")

    def to_bytes(self) -> bytes:
        """The canonical bytes: what travels, and what an answer's digest covers."""
        return canonical_json(
            {
                "v": VERSION,
                "type": PROMPT_TYPE,
                "id": self.request_id,
                "rp": self.rp,
                "msg": self.message,
                "created": self.created,
                "expires": self.expires,
                "number": self.number,
                "choices": list(self.choices),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Prompt:
        """Parse prompt bytes strictly; anything else is a ``FormatError``."""
        obj = parse_canonical(data, MAX_PROMPT_BYTES, "prompt")
        keys = {"v", "type", "id", "rp", "msg", "created", "expires", "number", "choices"}
        check_keys(obj, keys, PROMPT_TYPE)
        choices = obj["choices"]
        if not isinstance(choices, list):
            raise FormatError("choices must be a list")
        return cls(
            request_id=obj["id"],
            rp=obj["rp"],
            message=obj["msg"],
            created=obj["created"],
            expires=obj["expires"],
            number=obj["number"],
            choices=tuple(choices),
        )
