"""Opaque ids for the collections a person names (labels, groups), and the record naming them.

The chain is public to anyone who asks the service (it is unauthenticated so that
grantees and relying parties can verify it), and the service stores collection
names in its grants, items and audit rows. So a collection that a person names
(a documents label, a messaging group) is created under an opaque id::

    PREFIX + 32 lower-case hex digits (128 random bits), e.g. "documents/3f2a...c9"

and the human name lives only in the account's **name record**: the item ``names`` of
the ``_account`` collection, encrypted under that collection's epoch data key like every
item (every device of the account has the ``_account`` scope; only admin devices write
it, which every reader checks). The service and the chain see ids only.

Why random ids rather than a keyed hash of the name: a random id says nothing about the
name, is unlinkable between accounts and over time (a label made again gets a new id),
and needs no secret to derive, share or rotate; the record is needed anyway to list the
names. Names stay unique per account because the record is one item written with
optimistic versioning: two admins naming the same label at once conflict at the service,
and the second re-reads the record and finds the first one's id.

Record (canonical JSON, version 1)::

    {"v": 1, "names": {COLLECTION_ID: NAME, ...}}
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._encoding import canonical_json, parse_json_object
from .chain import check_collection
from .errors import (
    Conflict,
    FormatError,
    NetworkError,
    UnsupportedVersion,
    VerificationError,
)

if TYPE_CHECKING:
    from .device import Device

__all__ = [
    "ID_HEX",
    "NAMES_ITEM",
    "Names",
    "is_opaque",
    "name_collection",
    "new_collection_id",
    "read_names",
    "resolve_collection",
]

ACCOUNT_COLLECTION = "_account"
NAMES_ITEM = "names"
VERSION = 1
ID_HEX = 32
MAX_NAME = 255
_ID_RE = re.compile(r"[0-9a-f]{32}")
_FORBIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_ATTEMPTS = 5


def new_collection_id(prefix: str) -> str:
    """``prefix`` followed by 128 random bits in hex: a collection name that says nothing."""
    if not prefix.endswith("/"):
        raise ValueError("an opaque collection prefix ends in '/'")
    return check_collection(prefix + os.urandom(ID_HEX // 2).hex())


def is_opaque(collection: str, prefix: str) -> bool:
    """Whether ``collection`` is an opaque id under ``prefix``."""
    return collection.startswith(prefix) and bool(_ID_RE.fullmatch(collection[len(prefix) :]))


def _check_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name.encode()) <= MAX_NAME
        or any(unicodedata.category(c) in _FORBIDDEN for c in name)
    ):
        raise FormatError("a name must be 1-255 bytes of printable UTF-8")
    return name


@dataclass(frozen=True)
class Names:
    """The account's name record as this device read it (``version`` 0: none written yet)."""

    names: Mapping[str, str] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def from_bytes(cls, raw: bytes, version: int) -> Names:
        obj = parse_json_object(raw, what="name record")
        if obj.get("v") != VERSION:
            raise UnsupportedVersion(
                f"name record of version {obj.get('v')!r}; this Keystead reads version {VERSION}"
            )
        names = obj.get("names")
        if set(obj) != {"v", "names"} or not isinstance(names, dict):
            raise FormatError("name record: unexpected fields")
        return cls({check_collection(k): _check_name(v) for k, v in names.items()}, version)

    def to_bytes(self) -> bytes:
        return canonical_json({"v": VERSION, "names": dict(self.names)})

    def name_of(self, collection: str) -> str | None:
        """The human name of ``collection``; None if the record does not name it."""
        return self.names.get(collection)

    def id_of(self, prefix: str, name: str) -> str | None:
        """The collection id that ``name`` names under ``prefix``; None if none."""
        for cid, n in self.names.items():
            if n == name and is_opaque(cid, prefix):
                return cid
        return None

    def display(self, collection: str) -> str:
        """What to show for ``collection``: ``PREFIX`` + its name when named, else itself."""
        name = self.names.get(collection)
        return collection if name is None else collection[:-ID_HEX] + name

    def collection_for(self, shown: str) -> str | None:
        """The inverse of :meth:`display` (``documents/board``): the id, or None."""
        for cid in self.names:
            if self.display(cid) == shown:
                return cid
        return None

    def with_name(self, collection: str, name: str) -> Names:
        return Names({**self.names, collection: _check_name(name)}, self.version)


def read_names(device: Device, *, sync: bool = True) -> Names:
    """The account's name record; with ``sync``, fetched first when the service answers
    (offline: the locally cached record, which is what the device last saw)."""
    from .collections import Collection

    coll = Collection(device, ACCOUNT_COLLECTION)
    if sync:
        try:
            coll.sync(refresh_chain=False)
        except NetworkError:
            pass
    rec = coll.get(NAMES_ITEM)
    if rec is None:
        current = device.cache.item(ACCOUNT_COLLECTION, NAMES_ITEM)
        return Names({}, 0 if current is None else current.version)
    if not rec.by_admin:
        raise FormatError("the name record was written by a device that is not an admin")
    return Names.from_bytes(rec.plaintext, rec.version)


def name_collection(device: Device, prefix: str, name: str, *, kind: str = "keys") -> str:
    """The collection ``name`` names under ``prefix``, created if there is none (admin device).

    The name is written to the record first (a conflict means another admin wrote it
    meanwhile: read again, perhaps the name is there now), then the collection is created
    under its id. A record naming an id the chain lacks (a run stopped in between) is
    finished by the next call."""
    from .account import ensure_collections

    _check_name(name)
    for _ in range(_ATTEMPTS):
        names = read_names(device)
        why = device.cache.unreadable(ACCOUNT_COLLECTION).get(NAMES_ITEM)
        if why is not None:  # writing over it would drop every name it holds
            raise VerificationError(
                f"the account's name record cannot be read on this device ({why[1]}); "
                "run 'keystead sync' and try again"
            )
        cid = names.id_of(prefix, name)
        if cid is None:
            cid = new_collection_id(prefix)
            try:
                _write(device, names.with_name(cid, name))
            except Conflict:
                continue
        if cid not in device.chain(refresh=False).collections:
            ensure_collections(device, [cid], kind=kind)
        return cid
    raise Conflict("the account's name record kept changing; try again")


def _write(device: Device, names: Names) -> None:
    from .collections import Collection

    Collection(device, ACCOUNT_COLLECTION).put(
        NAMES_ITEM, names.to_bytes(), base_version=names.version or None
    )


def resolve_collection(device: Device, prefix: str, ref: str, *, sync: bool = True) -> str | None:
    """The collection ``ref`` means under ``prefix``: a name from the record, or an id
    (``PREFIX + hex``, or the hex alone) the chain has. None if it means none, or if the
    record names an id the chain does not have yet."""
    collections = device.chain(refresh=False).collections
    for candidate in (ref, prefix + ref):
        if is_opaque(candidate, prefix) and candidate in collections:
            return candidate
    cid = read_names(device, sync=sync).id_of(prefix, ref)
    if cid is None or cid in collections:
        return cid
    # Named but not (yet) in our chain: another device may have just created it; a record
    # naming an id no chain has is an unfinished creation, which name_collection completes.
    if sync and cid in device.chain().collections:
        return cid
    return None
