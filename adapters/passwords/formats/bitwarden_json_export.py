"""Writing Bitwarden's unencrypted JSON: every item type, folders by id, collections kept.

The inverse of :mod:`.bitwarden_json`: what that reads, this writes back so
that reading it again gives the same entries. Folders keep their Bitwarden id
(two folders of one name stay two); an organization's collections come back
as the ``collections`` list with each item's ``collectionIds``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from .._entry import DETAIL_KEYS, Entry
from .._errors import CannotExport
from ._common import as_uuid, ms_to_iso
from .bitwarden_json import DETAIL_OBJECTS, FIDO2_KEYS, FIELD_TYPES, TYPE_CODES

__all__ = ["HOLDS", "export_bitwarden_json"]

NAME = "bitwarden-json"
HOLDS = frozenset(
    {f"type:{t}" for t in TYPE_CODES.values()}
    | {"name", "notes", "folder", "other_urls", "fields", "field_kinds", "totp", "history",
       "passkeys", "details", "collections"}
)  # fmt: skip
_CODES = {v: k for k, v in TYPE_CODES.items()}
_FIELD_CODES = {v: k for k, v in FIELD_TYPES.items()}


def _folder_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "keystead:folder:" + name))


class _Folders:
    """Folder ids: the kept Bitwarden id while its name is unchanged, else one from the name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def id_for(self, e: Entry) -> str | None:
        if not e.folder:
            return None
        kept = e.extras.get("bitwarden.folderId")
        fid = kept if kept and self.names.get(kept, e.folder) == e.folder else _folder_id(e.folder)
        self.names.setdefault(fid, e.folder)
        return fid


def _json_extra(e: Entry, key: str, default: Any) -> Any:
    try:
        return json.loads(e.extras[key]) if key in e.extras else default
    except ValueError as err:
        raise CannotExport(NAME, e.id, f"{key} is not valid") from err


def _login(e: Entry, matches: list[Any]) -> dict[str, Any]:
    urls = [e.url, *e.other_urls] if e.url or e.other_urls else []
    if len(matches) != len(urls) or not all(m is None or m in range(6) for m in matches):
        raise CannotExport(NAME, e.id, "bitwarden.urimatch does not fit the URLs")
    login: dict[str, Any] = {
        "fido2Credentials": [
            {k: dict(pk).get(k) for k in FIDO2_KEYS} | dict(pk) for pk in e.passkeys
        ],
        "uris": [{"match": m, "uri": u} for u, m in zip(urls, matches, strict=True)],
        "username": e.username or None,
        "password": e.password or None,
        "totp": e.otpauth,
    }
    if "bitwarden.passwordRevisionDate" in e.extras:
        login["passwordRevisionDate"] = e.extras["bitwarden.passwordRevisionDate"]
    return login


def _field(name: str, value: str, kind: str) -> dict[str, Any]:
    linked = kind == "linked"
    if linked and not value.isdigit():
        raise ValueError("a linked field's value must be a number")
    return {
        "name": name,
        "value": None if linked else value,
        "type": _FIELD_CODES[kind],
        "linkedId": int(value) if linked else None,
    }


def _item(e: Entry, folders: _Folders) -> dict[str, Any]:
    x = e.extras
    try:
        reprompt = int(x.get("bitwarden.reprompt", "0") or "0")
        fields = [_field(*f) for f in e.fields]
    except ValueError as err:
        raise CannotExport(NAME, e.id, f"not valid for Bitwarden: {err}") from err
    matches = _json_extra(e, "bitwarden.urimatch", None) or [None] * (
        len(e.other_urls) + 1 if e.url or e.other_urls else 0
    )
    collections = _json_extra(e, "bitwarden.collections", [])
    item: dict[str, Any] = {
        "passwordHistory": [
            {"lastUsedDate": ms_to_iso(h.replaced, millis=True), "password": h.value}
            for h in e.history
            if h.field == "password"
        ]
        or None,
        "revisionDate": ms_to_iso(e.updated, millis=True),
        "creationDate": ms_to_iso(e.created, millis=True),
        "deletedDate": x.get("bitwarden.deletedDate"),
        "id": x.get("bitwarden.id", as_uuid(e.id)),
        "organizationId": x.get("bitwarden.organizationId"),
        "folderId": folders.id_for(e),
        "type": _CODES[e.type],
        "reprompt": reprompt,
        "name": e.name,
        "notes": e.notes or None,
        "favorite": x.get("bitwarden.favorite") == "1",
    }
    if fields:
        item["fields"] = fields
    if e.type == "login":
        item["login"] = _login(e, matches)
    elif e.type == "note":
        item["secureNote"] = {"type": _json_extra(e, "bitwarden.secureNoteType", 0)}
    else:
        d = e.details_dict
        item[DETAIL_OBJECTS[e.type]] = {k: d.get(k) for k in sorted(DETAIL_KEYS[e.type])}
    item["collectionIds"] = [c.get("id") for c in collections] or None
    return item


def export_bitwarden_json(entries: Sequence[Entry]) -> bytes:
    """Items with folders (or collections), times and password history, indented as
    Bitwarden writes it."""
    folders = _Folders()
    items = [_item(e, folders) for e in entries]
    cols: dict[str, Any] = {}
    for e in entries:
        for c in _json_extra(e, "bitwarden.collections", []):
            if not isinstance(c, dict) or not isinstance(c.get("id"), str):
                raise CannotExport(NAME, e.id, "a collection without an id (read from a CSV)")
            cols.setdefault(c["id"], c)
    doc: dict[str, Any] = {"encrypted": False}
    if cols:
        doc["collections"] = list(cols.values())
    if folders.names or not cols:
        doc["folders"] = [{"id": i, "name": n} for i, n in folders.names.items()]
    doc["items"] = items
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
