"""Bitwarden's unencrypted JSON export: ``{"encrypted": false, "folders": [...], "items": [...]}``.

Logins (type 1) and secure notes (type 2) become entries; cards and
identities are refused, not skipped, so an import is never partial. Errors
inside an item name the line where that item starts. Values without an Entry
field (item id, favorite, reprompt, URI match rules, custom field types) are
kept in ``extra`` as ``bitwarden.*``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from .._entry import Entry, HistoryItem
from .._errors import CannotExport, MalformedFile
from ._common import NewId, as_uuid, extras, iso_to_ms, ms_to_iso, new_uuid
from ._csv import decode

__all__ = ["export_bitwarden_json", "parse_bitwarden_json"]

NAME = "bitwarden-json"
_WS = re.compile(r"[ \t\n\r]*")


class _Bad(Exception):
    """A problem inside one item; turned into MalformedFile with the item's line."""


def _element_lines(text: str, key: str) -> list[int]:
    """Line where each element of the top-level array ``key`` starts (valid JSON only)."""
    dec, pos = json.JSONDecoder(), 0

    def skip(p: int) -> int:
        m = _WS.match(text, p)
        return m.end() if m else p

    pos = skip(pos) + 1
    while text[skip(pos)] != "}":
        name, pos = dec.raw_decode(text, skip(pos))
        pos = skip(skip(pos) + 1)
        if name == key and text[pos] == "[":
            lines, pos = [], pos + 1
            while text[skip(pos)] != "]":
                pos = skip(pos)
                lines.append(text.count("\n", 0, pos) + 1)
                _, pos = dec.raw_decode(text, pos)
                pos = skip(pos)
                pos += text[pos] == ","
            return lines
        _, pos = dec.raw_decode(text, pos)
        pos = skip(pos)
        pos += text[pos] == ","
    return []


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


def _item(item: object, folders: dict[str, str], now: int, new_id: NewId) -> Entry:
    if not isinstance(item, dict):
        raise _Bad("an item must be an object")
    kind = item.get("type")
    if kind not in (1, 2) or isinstance(kind, bool):
        raise _Bad(f"type {kind!r} is not a login (1) or secure note (2)")
    folder_id = item.get("folderId")
    if folder_id is not None and folder_id not in folders:
        raise _Bad(f"folderId {folder_id!r} is not among the folders")
    if not isinstance(item.get("favorite", False), bool):
        raise _Bad("favorite must be true or false")
    reprompt = item.get("reprompt", 0)
    if reprompt not in (0, 1) or isinstance(reprompt, bool):
        raise _Bad("reprompt must be 0 or 1")
    login = item.get("login") or {}
    if not isinstance(login, dict):
        raise _Bad("login must be an object")
    kept = {
        "bitwarden__id": _str(item, "id", nullable=False),
        "bitwarden__favorite": "1" if item.get("favorite") else "",
        "bitwarden__reprompt": str(reprompt),
    }
    if kind == 2:
        kept["bitwarden__type"] = "note"
    if item.get("organizationId") is not None:
        kept["bitwarden__organizationId"] = _str(item, "organizationId")
    fields, types = [], []
    for f in _dicts(item, "fields"):
        if f.get("type", 0) not in (0, 1, 2) or isinstance(f.get("type"), bool):
            raise _Bad("custom field type must be 0, 1 or 2 (linked fields are not supported)")
        fields.append((_str(f, "name"), _str(f, "value")))
        types.append(f.get("type", 0))
    if any(types):
        kept["bitwarden__fieldtypes"] = json.dumps(types)
    uris = _dicts(login, "uris")
    urls = [_str(u, "uri") for u in uris]
    matches = [u.get("match") for u in uris]
    if not all(m is None or (type(m) is int and 0 <= m <= 5) for m in matches):
        raise _Bad("uri match must be null or 0 to 5")
    if any(m is not None for m in matches):
        kept["bitwarden__urimatch"] = json.dumps(matches)
    updated = _time(item, "revisionDate", now)
    history = tuple(
        HistoryItem("password", _str(h, "password", nullable=False), _time(h, "lastUsedDate", 0))
        for h in _dicts(item, "passwordHistory")
    )
    return Entry(
        id=new_id(),
        name=_str(item, "name", nullable=False),
        url=urls[0] if urls else "",
        other_urls=tuple(urls[1:]),
        username=_str(login, "username"),
        password=_str(login, "password"),
        notes=_str(item, "notes"),
        otpauth=_str(login, "totp") or None,
        folder=folders[folder_id] if folder_id is not None else "",
        fields=tuple(fields),
        created=_time(item, "creationDate", updated),
        updated=updated,
        history=history,
        extra=extras(**kept),
    )


def parse_bitwarden_json(data: bytes, *, now: int, new_id: NewId = new_uuid) -> list[Entry]:
    """Every item, or MalformedFile naming the line; ``now`` fills missing times."""
    text = decode(NAME, data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedFile(NAME, e.lineno, e.msg) from e
    if not isinstance(doc, dict) or doc.get("encrypted") is not False:
        raise MalformedFile(NAME, 1, 'not an unencrypted export ("encrypted": false)')
    if not isinstance(doc.get("items"), list) or not isinstance(doc.get("folders", []), list):
        raise MalformedFile(NAME, 1, "items and folders must be lists")
    folders: dict[str, str] = {}
    for i, f in enumerate(doc.get("folders", [])):
        if not (isinstance(f, dict) and isinstance(f.get("id"), str)) or not isinstance(
            f.get("name"), str
        ):
            line = _element_lines(text, "folders")[i]
            raise MalformedFile(NAME, line, "a folder needs a string id and name")
        folders[f["id"]] = f["name"]
    entries = []
    for i, item in enumerate(doc["items"]):
        try:
            entries.append(_item(item, folders, now, new_id))
        except (_Bad, ValueError) as e:
            line = _element_lines(text, "items")[i]
            raise MalformedFile(NAME, line, f"item {i + 1}: {e}") from None
    return entries


def _folder_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "keystead:folder:" + name))


def _export_item(e: Entry) -> dict[str, Any]:
    x = e.extras
    urls = [e.url, *e.other_urls] if e.url or e.other_urls else []
    try:
        types = json.loads(x.get("bitwarden.fieldtypes", "null")) or [0] * len(e.fields)
        matches = json.loads(x.get("bitwarden.urimatch", "null")) or [None] * len(urls)
        reprompt = int(x.get("bitwarden.reprompt", "0") or "0")
    except ValueError as err:
        raise CannotExport(NAME, e.id, "a bitwarden.* extra value is not valid") from err
    if (
        len(types) != len(e.fields)
        or len(matches) != len(urls)
        or not all(t in (0, 1, 2) for t in types)
        or not all(m is None or m in range(6) for m in matches)
    ):
        raise CannotExport(NAME, e.id, "bitwarden.fieldtypes or urimatch does not fit")
    note = x.get("bitwarden.type") == "note"
    if note and (urls or e.username or e.password or e.otpauth):
        raise CannotExport(NAME, e.id, "a secure note cannot carry login data")
    item: dict[str, Any] = {
        "passwordHistory": [
            {"lastUsedDate": ms_to_iso(h.replaced, millis=True), "password": h.value}
            for h in e.history
            if h.field == "password"
        ]
        or None,
        "revisionDate": ms_to_iso(e.updated, millis=True),
        "creationDate": ms_to_iso(e.created, millis=True),
        "deletedDate": None,
        "id": x.get("bitwarden.id", as_uuid(e.id)),
        "organizationId": x.get("bitwarden.organizationId"),
        "folderId": _folder_id(e.folder) if e.folder else None,
        "type": 2 if note else 1,
        "reprompt": reprompt,
        "name": e.name,
        "notes": e.notes or None,
        "favorite": x.get("bitwarden.favorite") == "1",
    }
    if e.fields:
        item["fields"] = [
            {"name": n, "value": v, "type": t, "linkedId": None}
            for (n, v), t in zip(e.fields, types, strict=True)
        ]
    if note:
        item["secureNote"] = {"type": 0}
    else:
        item["login"] = {
            "fido2Credentials": [],
            "uris": [{"match": m, "uri": u} for u, m in zip(urls, matches, strict=True)],
            "username": e.username or None,
            "password": e.password or None,
            "totp": e.otpauth,
        }
    item["collectionIds"] = None
    return item


def export_bitwarden_json(entries: Sequence[Entry]) -> bytes:
    """Items with folders, times and password history, indented as Bitwarden writes it."""
    names = sorted({e.folder for e in entries if e.folder})
    doc = {
        "encrypted": False,
        "folders": [{"id": _folder_id(n), "name": n} for n in names],
        "items": [_export_item(e) for e in entries],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
