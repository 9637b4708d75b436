"""One vault entry: a frozen value with a versioned byte form and a conflict-safe merge.

An entry is one item of the ``passwords`` collection. Its ``revision`` is a hash
of its content and ``lineage`` lists the revisions it descends from, so that
``_merge.merge`` can tell a plain update (fast-forward) from two concurrent edits
without asking the service, and two devices merging the same pair agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from keystead.core.errors import FormatError, UnsupportedVersion

__all__ = [
    "DETAIL_KEYS",
    "ENTRY_VERSION",
    "FIELD_KINDS",
    "MAX_LINEAGE",
    "MAX_TIME",
    "TYPES",
    "Entry",
    "HistoryItem",
]

ENTRY_VERSION = 2
"""Version 2 added item types, typed custom fields, details and passkeys. Version 1
was pre-release: it is refused, not converted."""
TYPES = ("login", "note", "card", "identity", "ssh-key")
FIELD_KINDS = ("text", "hidden", "boolean", "linked")
DETAIL_KEYS: dict[str, frozenset[str]] = {
    "login": frozenset(),
    "note": frozenset(),
    "card": frozenset({"cardholderName", "brand", "number", "expMonth", "expYear", "code"}),
    "identity": frozenset(
        {
            "title",
            "firstName",
            "middleName",
            "lastName",
            "address1",
            "address2",
            "address3",
            "city",
            "state",
            "postalCode",
            "country",
            "company",
            "email",
            "phone",
            "ssn",
            "username",
            "passportNumber",
            "licenseNumber",
        }
    ),
    "ssh-key": frozenset({"privateKey", "publicKey", "keyFingerprint"}),
}
"""The structured values each type holds (Bitwarden's names, which the other managers map to)."""
MAX_LINEAGE = 64
"""Ancestors kept per entry. Past it a fast-forward may be seen as a conflict:
the safe side (both values kept, entry flagged), never a silent loss."""

# Content fields that a conflict compares; the loser's differing values go to history.
_TEXT_FIELDS = ("name", "url", "username", "password", "notes", "folder")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{name} is not encodable as UTF-8 (lone surrogate)") from e


def _check_pairs(name: str, value: object, size: int = 2) -> None:
    if not isinstance(value, tuple):
        raise TypeError(f"{name} must be a tuple of {size}-tuples of str")
    for pair in value:
        if type(pair) is not tuple or len(pair) != size:
            raise TypeError(f"{name} must be a tuple of {size}-tuples of str")
        for text in pair:
            if type(text) is not str or not text.isascii():
                _check_text(name, text)


def _check_sorted_pairs(name: str, value: object) -> None:
    _check_pairs(name, value)
    assert isinstance(value, tuple)
    keys = [k for k, _ in value]
    if keys != sorted(set(keys)):
        raise ValueError(f"{name} keys must be unique and sorted")


MAX_TIME = 253402300800000 - 1
"""The last millisecond of year 9999: every format can write times up to it."""


def _check_time(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise ValueError(f"{name} must be an int of milliseconds from the epoch to year 9999")


@dataclass(frozen=True)
class HistoryItem:
    """An earlier value of one field: edited away, or the losing side of a conflict."""

    field: str
    value: str
    replaced: int
    conflict: bool = False

    def __post_init__(self) -> None:
        _check_text("field", self.field)
        _check_text("value", self.value)
        _check_time("replaced", self.replaced)
        if type(self.conflict) is not bool:
            raise TypeError("conflict must be bool")

    def _key(self) -> tuple[int, str, str, bool]:
        return (self.replaced, self.field, self.value, self.conflict)


@dataclass(frozen=True)
class Entry:
    """One vault item: what a person stores, plus what formats carry that we must not drop.

    ``type`` is one of :data:`TYPES`; URL, username, password, TOTP and passkeys
    belong to logins only. ``fields`` are custom (name, value, kind) fields,
    kind one of :data:`FIELD_KINDS` (a linked field's value names what it links
    to). ``details`` are the type's structured values (card number, identity
    names, SSH private key), sorted unique keys from :data:`DETAIL_KEYS`.
    ``passkeys`` are FIDO2 credentials, each kept whole as sorted (key, value)
    pairs, private key included. ``extra`` holds format-specific values
    (``firefox.guid``, ``bitwarden.favorite``...) kept for exact round trips,
    as sorted unique keys. Times are milliseconds since the Unix epoch.
    """

    id: str
    type: str = "login"
    name: str = ""
    url: str = ""
    username: str = ""
    password: str = ""
    notes: str = ""
    otpauth: str | None = None
    folder: str = ""
    created: int = 0
    updated: int = 0
    other_urls: tuple[str, ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    passkeys: tuple[tuple[tuple[str, str], ...], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    history: tuple[HistoryItem, ...] = ()
    had_conflict: bool = False
    lineage: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Hot path (an import builds thousands): plain strings are checked inline.
        texts = [
            self.id,
            self.name,
            self.url,
            self.username,
            self.password,
            self.notes,
            self.folder,
            *self.other_urls,
            *self.lineage,
        ]
        if self.otpauth is not None:
            texts.append(self.otpauth)
        for value in texts:
            if type(value) is not str:
                raise TypeError(f"text fields must be str, not {type(value).__name__}")
            if not value.isascii():
                _check_text("text field", value)
        if not self.id:
            raise ValueError("id must not be empty")
        if self.otpauth == "":
            raise ValueError("otpauth is None or non-empty")
        _check_time("created", self.created)
        _check_time("updated", self.updated)
        if type(self.other_urls) is not tuple or type(self.lineage) is not tuple:
            raise TypeError("other_urls and lineage must be tuples")
        if len(self.lineage) > MAX_LINEAGE:
            raise ValueError(f"lineage must hold at most {MAX_LINEAGE} revisions")
        if self.fields:
            _check_pairs("fields", self.fields, 3)
            if any(kind not in FIELD_KINDS for _, _, kind in self.fields):
                raise ValueError(f"a field kind must be one of {', '.join(FIELD_KINDS)}")
        if self.extra:
            _check_sorted_pairs("extra", self.extra)
        self._check_type()
        if type(self.history) is not tuple or not all(type(h) is HistoryItem for h in self.history):
            raise TypeError("history must be a tuple of HistoryItem")
        if type(self.had_conflict) is not bool:
            raise TypeError("had_conflict must be bool")

    def _check_type(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"type must be one of {', '.join(TYPES)}, not {self.type!r}")
        if self.details:
            _check_sorted_pairs("details", self.details)
            unknown = {k for k, _ in self.details} - DETAIL_KEYS[self.type]
            if unknown:
                raise ValueError(f"a {self.type} has no detail {sorted(unknown)[0]!r}")
        if type(self.passkeys) is not tuple:
            raise TypeError("passkeys must be a tuple")
        for passkey in self.passkeys:
            _check_sorted_pairs("passkey", passkey)
        if self.type != "login" and (
            self.url
            or self.other_urls
            or self.username
            or self.password
            or self.otpauth is not None
            or self.passkeys
        ):
            raise ValueError(f"a {self.type} has no URL, username, password, TOTP or passkey")

    @property
    def details_dict(self) -> dict[str, str]:
        """``details`` as a dict, for reading."""
        return dict(self.details)

    @property
    def extras(self) -> dict[str, str]:
        """``extra`` as a dict, for reading."""
        return dict(self.extra)

    @cached_property
    def revision(self) -> str:
        """Hash of the content (everything but ``lineage``): equal content, equal revision."""
        body = _to_json(self)
        del body["lineage"]
        return hashlib.sha256(_canonical(body)).hexdigest()[:32]

    def with_id(self, new_id: str) -> Entry:
        """The same entry under another id (an import's stable id). Only the id is checked
        again: the rest was checked when this entry was built."""
        if type(new_id) is not str or not new_id or not new_id.isascii():
            raise ValueError("id must be a non-empty ASCII str")
        out = object.__new__(Entry)
        out.__dict__.update(self.__dict__)
        out.__dict__.pop("revision", None)  # the cached hash covers the id
        object.__setattr__(out, "id", new_id)
        return out

    def edit(self, now: int, **changes: Any) -> Entry:
        """A new version after a person's edit; a replaced password goes to history."""
        bad = set(changes) - {f.name for f in dataclasses.fields(self)}
        bad |= set(changes) & {"id", "created", "updated", "history", "lineage"}
        if bad:
            raise ValueError(f"cannot edit {sorted(bad)}")
        history = self.history
        if "password" in changes and changes["password"] != self.password:
            history += (HistoryItem("password", self.password, now),)
        for key in ("extra", "details"):
            if key in changes:
                changes[key] = tuple(sorted(dict(changes[key]).items()))
        return dataclasses.replace(
            self,
            **changes,
            updated=max(now, self.updated),
            history=history,
            lineage=((self.revision,) + self.lineage)[:MAX_LINEAGE],
        )

    def to_bytes(self) -> bytes:
        """The item plaintext: canonical UTF-8 JSON carrying its version."""
        return _canonical({"v": ENTRY_VERSION, "entry": _to_json(self)})

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse and check an item plaintext; anything unexpected is a FormatError."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise FormatError("entry is not UTF-8 JSON") from e
        if not isinstance(doc, dict) or set(doc) != {"v", "entry"}:
            raise FormatError("entry must be an object with exactly 'v' and 'entry'")
        if type(doc["v"]) is not int:
            raise FormatError("entry version must be an integer")
        if doc["v"] != ENTRY_VERSION:
            raise UnsupportedVersion(
                f"vault item version {doc['v']} is not supported (this Keystead reads version "
                f"{ENTRY_VERSION}; version 1 items were pre-release: export them with the "
                "Keystead that wrote them)"
            )
        try:
            return _from_json(doc["entry"])
        except (TypeError, ValueError, KeyError) as e:
            raise FormatError(f"invalid entry: {e}") from e


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _to_json(e: Entry) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "name": e.name,
        "url": e.url,
        "username": e.username,
        "password": e.password,
        "notes": e.notes,
        "otpauth": e.otpauth,
        "folder": e.folder,
        "created": e.created,
        "updated": e.updated,
        "other_urls": list(e.other_urls),
        "fields": [list(p) for p in e.fields],
        "details": [list(p) for p in e.details],
        "passkeys": [[list(p) for p in pk] for pk in e.passkeys],
        "extra": [list(p) for p in e.extra],
        "history": [[h.field, h.value, h.replaced, h.conflict] for h in e.history],
        "had_conflict": e.had_conflict,
        "lineage": list(e.lineage),
    }


_KEYS = frozenset(_to_json(Entry(id="x")))


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc[key]
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list")
    return value


def _pairs(doc: dict[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    return _tuples(_list(doc, key), key, 2)  # type: ignore[return-value]


def _tuples(items: list[Any], key: str, size: int) -> tuple[tuple[str, ...], ...]:
    out = []
    for p in items:
        if not (isinstance(p, list) and len(p) == size):
            raise TypeError(f"{key} items must be lists of {size}")
        out.append(tuple(p))
    return tuple(out)


def _from_json(doc: object) -> Entry:
    if not isinstance(doc, dict) or set(doc) != _KEYS:
        raise ValueError("entry object has missing or unknown keys")
    history = []
    for h in _list(doc, "history"):
        if not (isinstance(h, list) and len(h) == 4):
            raise TypeError("history items must be [field, value, replaced, conflict]")
        history.append(HistoryItem(h[0], h[1], h[2], h[3]))
    return Entry(
        id=doc["id"],
        type=doc["type"],
        name=doc["name"],
        url=doc["url"],
        username=doc["username"],
        password=doc["password"],
        notes=doc["notes"],
        otpauth=doc["otpauth"],
        folder=doc["folder"],
        created=doc["created"],
        updated=doc["updated"],
        other_urls=tuple(_list(doc, "other_urls")),
        fields=_tuples(_list(doc, "fields"), "fields", 3),  # type: ignore[arg-type]
        details=_pairs(doc, "details"),
        passkeys=tuple(
            _tuples(_list({"passkey": pk}, "passkey"), "passkey", 2)  # type: ignore[misc]
            for pk in _list(doc, "passkeys")
        ),
        extra=_pairs(doc, "extra"),
        history=tuple(history),
        had_conflict=doc["had_conflict"],
        lineage=tuple(_list(doc, "lineage")),
    )
