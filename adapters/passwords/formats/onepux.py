"""1Password's ``.1pux`` export: a ZIP whose ``export.data`` is JSON, accounts > vaults > items.

Logins (category 001) and passwords (005) become logins: the ``loginFields``
designated username and password, ``overview.url`` and ``overview.urls``,
the first TOTP field as the otpauth URI; credit cards (002), identities (004)
and SSH keys (114) their own types with their values as details; secure
notes (003) notes. Every other category (bank account, server, database...)
becomes a secure note whose values are custom fields, so nothing is lost.
Section fields that are not details become custom fields (``concealed``
ones hidden); the vault's name is the folder. Files and documents (006) have
no place in the vault: named and refused, or left out with ``--skip-unsupported``.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from .._entry import MAX_TIME, Entry, HistoryItem
from .._errors import MalformedFile
from ._common import NewId, extras, new_uuid
from ._csv import decode
from ._json import load_json
from ._loss import Skips

__all__ = ["parse_1pux"]

NAME = "1pux"
MAX_DATA = 512 * 1024 * 1024
_TYPES = {"001": "login", "005": "login", "002": "card", "004": "identity", "114": "ssh-key"}
_CARD = {"cardholder": "cardholderName", "type": "brand", "ccnum": "number", "cvv": "code"}
_IDENTITY = {
    "firstname": "firstName", "initial": "middleName", "lastname": "lastName",
    "company": "company", "email": "email", "defphone": "phone", "username": "username",
}  # fmt: skip
_ADDRESS = {"street": "address1", "city": "city", "state": "state", "zip": "postalCode",
            "country": "country"}  # fmt: skip


class _Bad(Exception):
    pass


def _read(data: bytes) -> Any:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("export.data")
            if info.file_size > MAX_DATA:
                raise MalformedFile(NAME, 1, "export.data is larger than 512 MiB")
            raw = z.read(info)
    except (zipfile.BadZipFile, KeyError, OSError):
        raise MalformedFile(NAME, 1, "not a 1PUX file (a ZIP with export.data)") from None
    return load_json(NAME + " export.data", decode(NAME, raw))


def _ms(seconds: object) -> int | None:
    if type(seconds) is not int or not 0 <= seconds * 1000 <= MAX_TIME:
        return None
    return seconds * 1000


def _text(value: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, text) of a section field's value; None for a file."""
    if len(value) != 1:
        raise _Bad(f"a field value must have one kind, not {sorted(value)}")
    [(kind, v)] = value.items()
    if kind == "file":
        return None
    if kind == "address" and isinstance(v, dict):
        return kind, ", ".join(str(v[k]) for k in _ADDRESS if v.get(k))
    if kind == "email" and isinstance(v, dict):
        return kind, str(v.get("email_address") or "")
    if kind == "sshKey" and isinstance(v, dict):
        return kind, str(v.get("privateKey") or "")
    if kind == "monthYear" and type(v) is int:
        return kind, f"{v // 100:04d}-{v % 100:02d}"
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return kind, str(v)
    raise _Bad(f"a {kind} value must be text")


class _Item:
    """One item being converted: its details, custom fields and TOTP."""

    def __init__(self, kind: str, label: str, skips: Skips) -> None:
        self.kind, self.label, self.skips = kind, label, skips
        self.details: dict[str, str] = {}
        self.fields: list[tuple[str, str, str]] = []
        self.totp: str | None = None

    def section_field(self, section: str, f: dict[str, Any]) -> None:
        value = f.get("value")
        if not isinstance(value, dict):
            raise _Bad("a section field needs a value object")
        title = str(f.get("title") or f.get("id") or "")
        name = f"{section} / {title}" if section else title
        got = _text(value)
        if got is None:
            self.skips.drop(NAME, self.label, f"file {name!r}", "files are not kept")
            return
        kind, text = got
        fid = f.get("id")
        if kind == "totp" and self.kind == "login" and self.totp is None and text:
            self.totp = text
        elif self.kind == "card" and fid in _CARD:
            self.details[_CARD[fid]] = text
        elif self.kind == "card" and fid == "expiry" and kind == "monthYear":
            self.details["expYear"], _, month = text.partition("-")
            self.details["expMonth"] = str(int(month))
        elif self.kind == "identity" and fid in _IDENTITY:
            self.details[_IDENTITY[fid]] = text
        elif self.kind == "identity" and kind == "address":
            for key, detail in _ADDRESS.items():
                if value["address"].get(key):
                    self.details[detail] = str(value["address"][key])
        elif self.kind == "ssh-key" and kind == "sshKey":
            meta = value["sshKey"].get("metadata") or {}
            self.details["privateKey"] = text
            for src, dst in (("publicKey", "publicKey"), ("fingerprint", "keyFingerprint")):
                if meta.get(src):
                    self.details[dst] = str(meta[src])
        elif text:
            self.fields.append((name, text, "hidden" if kind == "concealed" else "text"))


def _item(
    item: dict[str, Any], folder: str, label: str, now: int, new_id: NewId, skips: Skips
) -> Entry | None:
    category = item.get("categoryUuid")
    if category == "006":
        skips.drop(NAME, label, "item", "documents (files) are not kept")
        return None
    kind = _TYPES.get(str(category), "note")
    details, overview = item.get("details") or {}, item.get("overview") or {}
    if not isinstance(details, dict) or not isinstance(overview, dict):
        raise _Bad("details and overview must be objects")
    conv = _Item(kind, label, skips)
    username = password = ""
    for f in details.get("loginFields") or []:
        value = str(f.get("value") or "")
        if f.get("designation") == "username" and kind == "login":
            username = value
        elif f.get("designation") == "password" and kind == "login":
            password = value
        elif value:
            field_kind = {"P": "hidden", "C": "boolean"}.get(f.get("fieldType"), "text")
            conv.fields.append((str(f.get("name") or f.get("id") or ""), value, field_kind))
    if kind == "login" and isinstance(details.get("password"), str) and not password:
        password = details["password"]  # category 005 keeps it here
    for section in details.get("sections") or []:
        for f in section.get("fields") or []:
            conv.section_field(str(section.get("title") or ""), f)
    urls = [str(u.get("url") or "") for u in overview.get("urls") or [] if u.get("url")]
    main = str(overview.get("url") or "")
    if main and main in urls:
        urls.remove(main)
    if kind != "login":  # no URL field: kept as custom fields instead
        conv.fields += [("url", u, "text") for u in ([main] if main else []) + urls]
        urls, main = [], ""
    updated = _ms(item.get("updatedAt")) or now
    kept = {"onepassword__uuid": str(item.get("uuid") or ""), "onepassword__category":
            str(category)}  # fmt: skip
    if overview.get("tags"):
        kept["onepassword__tags"] = ";".join(map(str, overview["tags"]))
    if item.get("favIndex"):
        kept["onepassword__favIndex"] = str(item["favIndex"])
    if item.get("state") not in (None, "active"):
        kept["onepassword__state"] = str(item["state"])
    return Entry(
        id=new_id(),
        type=kind,
        name=str(overview.get("title") or ""),
        url=main or (urls.pop(0) if urls else ""),
        other_urls=tuple(urls),
        username=username,
        password=password,
        notes=str(details.get("notesPlain") or ""),
        otpauth=conv.totp,
        folder=folder,
        fields=tuple(conv.fields),
        details=tuple(sorted((k, v) for k, v in conv.details.items() if v)),
        created=_ms(item.get("createdAt")) or updated,
        updated=updated,
        history=tuple(
            HistoryItem("password", str(h.get("value") or ""), _ms(h.get("time")) or 0)
            for h in details.get("passwordHistory") or []
        ),
        extra=extras(**kept),
    )


def parse_1pux(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every item of every vault of every account in the export."""
    skips = skips or Skips()
    doc = _read(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("accounts"), list):
        raise MalformedFile(NAME, 1, "export.data has no accounts list")
    out = []
    for account in doc["accounts"]:
        for vault in (account or {}).get("vaults") or []:
            folder = str(((vault or {}).get("attrs") or {}).get("name") or "")
            for n, item in enumerate(vault.get("items") or []):
                title = ((item or {}).get("overview") or {}).get("title")
                label = f"{folder}/{n + 1} {title!r}"
                try:
                    entry = _item(item, folder, label, now, new_id, skips)
                except (_Bad, AttributeError, TypeError, ValueError) as e:
                    raise MalformedFile(NAME, 1, f"item {label}: {e}") from None
                if entry is not None:
                    out.append(entry)
    return out
