"""Bitwarden's unencrypted JSON export, personal and organization, every item type.

``{"encrypted": false, "folders": [...], "items": [...]}`` (personal) or
``{"encrypted": false, "collections": [...], "items": [...]}`` (organization);
files without ``"encrypted"`` are read too, as Bitwarden reads them. Logins
(1, with passkeys ``fido2Credentials`` kept whole), secure notes (2), cards
(3), identities (4) and SSH keys (5) become entries. Errors inside an item
name the line where that item starts. Values without an Entry field (item
and folder ids, favorite, reprompt, URI match rules, the collections an item
is in) are kept in ``extra`` as ``bitwarden.*``; a value that has no place at
all is left out only through :class:`Skips` (refused by default).
"""

from __future__ import annotations

import json
from typing import Any

from .._entry import DETAIL_KEYS, Entry, HistoryItem
from .._errors import MalformedFile
from ._common import NewId, extras, iso_to_ms, new_uuid
from ._csv import decode
from ._json import element_lines, load_json
from ._loss import Skips
from ._secrets import FileSecrets

__all__ = ["DETAIL_OBJECTS", "FIDO2_KEYS", "FIELD_TYPES", "TYPE_CODES", "parse_bitwarden_json"]

NAME = "bitwarden-json"
TYPE_CODES = {1: "login", 2: "note", 3: "card", 4: "identity", 5: "ssh-key"}
DETAIL_OBJECTS = {"card": "card", "identity": "identity", "ssh-key": "sshKey"}
FIELD_TYPES = {0: "text", 1: "hidden", 2: "boolean", 3: "linked"}
FIDO2_KEYS = (
    "credentialId", "keyType", "keyAlgorithm", "keyCurve", "keyValue", "rpId", "userHandle",
    "userName", "counter", "rpName", "userDisplayName", "discoverable", "creationDate",
)  # fmt: skip
_ITEM_KEYS = frozenset(
    {
        "passwordHistory", "revisionDate", "creationDate", "deletedDate", "id",
        "organizationId", "folderId", "type", "reprompt", "name", "notes", "favorite",
        "fields", "login", "secureNote", "card", "identity", "sshKey", "collectionIds",
    }
)  # fmt: skip
_LOGIN_KEYS = frozenset({"uris", "username", "password", "totp", "fido2Credentials",
                         "passwordRevisionDate"})  # fmt: skip


class _Bad(Exception):
    """A problem inside one item; turned into MalformedFile with the item's line."""


def _str(obj: dict[str, Any], key: str, *, nullable: bool = True) -> str:
    value = obj.get(key)
    if value is None and nullable:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{key} must be a string")
    return value


def _time(obj: dict[str, Any], key: str, default: int) -> int:
    if obj.get(key) is None:
        return default
    ms = iso_to_ms(_str(obj, key))
    if ms is None:
        raise _Bad(f"{key} is not an ISO 8601 UTC time: {obj[key]!r}")
    return ms


def _dicts(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Bad(f"{key} must be a list of objects")
    return value


def _obj(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key) or {}
    if not isinstance(value, dict):
        raise _Bad(f"{key} must be an object")
    return value


class _Reader:
    """One file's folders and collections, and the policy for values with no place."""

    def __init__(self, folders: dict[str, str], collections: dict[str, Any], skips: Skips):
        self.folders = folders
        self.collections = collections
        self.skips = skips

    def _unknown(self, label: str, obj: dict[str, Any], known: frozenset[str], where: str) -> None:
        for key in sorted(set(obj) - known):
            if obj[key] not in (None, [], {}, ""):
                self.skips.drop(NAME, label, f"{where}{key}", "no place for it in the vault")

    def _fields(self, label: str, item: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
        out = []
        for f in _dicts(item, "fields"):
            kind = FIELD_TYPES.get(f.get("type", 0)) if type(f.get("type", 0)) is int else None
            if kind is None:
                self.skips.drop(NAME, label, f"field {f.get('name')!r}", "unknown field type")
                continue
            if kind == "linked":
                if type(f.get("linkedId")) is not int:
                    raise _Bad("a linked field needs an integer linkedId")
                value = str(f["linkedId"])
            else:
                value = _str(f, "value")
            out.append((_str(f, "name"), value, kind))
        return tuple(out)

    def _passkeys(
        self, label: str, login: dict[str, Any]
    ) -> tuple[tuple[tuple[str, str], ...], ...]:
        out = []
        for cred in _dicts(login, "fido2Credentials"):
            pairs = []
            for key, value in sorted(cred.items()):
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise _Bad(f"passkey {key} must be a string")
                pairs.append((key, value))
            out.append(tuple(pairs))
        return tuple(out)

    def _details(self, label: str, item: dict[str, Any], kind: str) -> tuple[tuple[str, str], ...]:
        if kind not in DETAIL_OBJECTS:
            return ()
        obj = _obj(item, DETAIL_OBJECTS[kind])
        self._unknown(label, obj, DETAIL_KEYS[kind], DETAIL_OBJECTS[kind] + ".")
        return tuple(
            sorted((k, _str(obj, k)) for k in obj if k in DETAIL_KEYS[kind] and obj[k] is not None)
        )

    def item(self, label: str, item: object, now: int, new_id: NewId) -> Entry | None:
        if not isinstance(item, dict):
            raise _Bad("an item must be an object")
        code = item.get("type")
        kind = TYPE_CODES.get(code) if type(code) is int else None
        if kind is None:
            self.skips.drop(NAME, label, "item", f"type {code!r} is not one Bitwarden defines")
            return None
        self._unknown(label, item, _ITEM_KEYS, "")
        folder_id = item.get("folderId")
        if folder_id is not None and folder_id not in self.folders:
            raise _Bad(f"folderId {folder_id!r} is not among the folders")
        if not isinstance(item.get("favorite", False), bool):
            raise _Bad("favorite must be true or false")
        reprompt = item.get("reprompt", 0)
        if reprompt not in (0, 1) or isinstance(reprompt, bool):
            raise _Bad("reprompt must be 0 or 1")
        login = _obj(item, "login") if kind == "login" else {}
        if kind != "login" and item.get("login"):
            self.skips.drop(NAME, label, "login", f"a {kind} has no login values")
        self._unknown(label, login, _LOGIN_KEYS, "login.")
        kept = {
            "bitwarden__id": _str(item, "id", nullable=False),
            "bitwarden__favorite": "1" if item.get("favorite") else "",
            "bitwarden__reprompt": str(reprompt),
        }
        for key in ("organizationId", "deletedDate"):
            if item.get(key) is not None:
                kept["bitwarden__" + key] = _str(item, key)
        if folder_id is not None:
            kept["bitwarden__folderId"] = folder_id
        if kind == "login" and login.get("passwordRevisionDate") is not None:
            kept["bitwarden__passwordRevisionDate"] = _str(login, "passwordRevisionDate")
        if kind == "note" and _obj(item, "secureNote").get("type", 0) != 0:
            kept["bitwarden__secureNoteType"] = json.dumps(_obj(item, "secureNote").get("type"))
        ids = item.get("collectionIds") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _Bad("collectionIds must be a list of strings")
        if ids:
            if any(i not in self.collections for i in ids):
                raise _Bad("a collectionId is not among the collections")
            cols = [self.collections[i] for i in ids]
            kept["bitwarden__collections"] = json.dumps(cols, ensure_ascii=False, sort_keys=True)
        uris = _dicts(login, "uris")
        urls = [_str(u, "uri") for u in uris]
        matches = [u.get("match") for u in uris]
        if not all(m is None or (type(m) is int and 0 <= m <= 5) for m in matches):
            raise _Bad("uri match must be null or 0 to 5")
        if any(m is not None for m in matches):
            kept["bitwarden__urimatch"] = json.dumps(matches)
        updated = _time(item, "revisionDate", now)
        history = tuple(
            HistoryItem(
                "password", _str(h, "password", nullable=False), _time(h, "lastUsedDate", 0)
            )
            for h in _dicts(item, "passwordHistory")
        )
        return Entry(
            id=new_id(),
            type=kind,
            name=_str(item, "name", nullable=False),
            url=urls[0] if urls else "",
            other_urls=tuple(urls[1:]),
            username=_str(login, "username"),
            password=_str(login, "password"),
            notes=_str(item, "notes"),
            otpauth=_str(login, "totp") or None,
            folder=self.folders[folder_id] if folder_id is not None else "",
            fields=self._fields(label, item),
            details=self._details(label, item, kind),
            passkeys=self._passkeys(label, login),
            created=_time(item, "creationDate", updated),
            updated=updated,
            history=history,
            extra=extras(**kept),
        )


def _index(text: str, doc: dict[str, Any], key: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """Folders or collections by id; each needs string ``fields``."""
    out: dict[str, Any] = {}
    for i, f in enumerate(doc.get(key) or []):
        if not (isinstance(f, dict) and all(isinstance(f.get(k), str) for k in fields)):
            line = element_lines(text, key)[i]
            raise MalformedFile(NAME, line, f"each of {key} needs a string {' and '.join(fields)}")
        if f["id"] in out:
            raise MalformedFile(NAME, element_lines(text, key)[i], f"id {f['id']!r} appears twice")
        out[f["id"]] = f
    return out


def parse_bitwarden_json(
    data: bytes,
    *,
    now: int,
    new_id: NewId = new_uuid,
    skips: Skips | None = None,
    secrets: FileSecrets | None = None,
) -> list[Entry]:
    """Every item, or MalformedFile naming the line; ``now`` fills missing times.

    A password-protected export (``passwordProtected``) is opened with
    ``secrets.password()`` first; an account-restricted one cannot be opened."""
    skips = skips or Skips()
    text = decode(NAME, data)
    doc = load_json(NAME, text)
    if not isinstance(doc, dict):
        raise MalformedFile(NAME, 1, "not a Bitwarden export (a JSON object)")
    if doc.get("passwordProtected") is True:
        from .bitwarden_protected import open_protected

        inner = open_protected(doc, (secrets or FileSecrets()).password())
        return parse_bitwarden_json(inner.encode("utf-8"), now=now, new_id=new_id, skips=skips)
    if doc.get("encrypted") is True:
        raise MalformedFile(
            NAME,
            1,
            "an account-restricted encrypted export: only that Bitwarden account opens it; "
            "export again as password-protected or unencrypted",
        )
    if doc.get("encrypted", False) is not False:
        raise MalformedFile(NAME, 1, '"encrypted" must be true or false')
    for key in ("items", "folders", "collections"):
        if not isinstance(doc.get(key) or [], list):
            raise MalformedFile(NAME, 1, f"{key} must be a list")
    if not isinstance(doc.get("items"), list):
        raise MalformedFile(NAME, 1, "no items list")
    folders = {k: v["name"] for k, v in _index(text, doc, "folders", ("id", "name")).items()}
    cols = {
        k: {c: v.get(c) for c in ("id", "organizationId", "name", "externalId")}
        for k, v in _index(text, doc, "collections", ("id", "name")).items()
    }
    reader = _Reader(folders, cols, skips)
    entries = []
    for i, item in enumerate(doc["items"]):
        name = item.get("name") if isinstance(item, dict) else None
        label = f"{i + 1} {name!r}" if isinstance(name, str) else str(i + 1)
        try:
            entry = reader.item(label, item, now, new_id)
        except (_Bad, ValueError, TypeError) as e:
            line = element_lines(text, "items")[i]
            raise MalformedFile(NAME, line, f"item {label}: {e}") from None
        if entry is not None:
            entries.append(entry)
    return entries
