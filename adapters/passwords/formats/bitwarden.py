"""Bitwarden's unencrypted CSV export, personal and organization.

Personal: ``folder,favorite,type,name,notes,fields,reprompt,login_uri,
login_username,login_password,login_totp`` (before 2022 without ``reprompt``);
organization: ``collections,type,name,notes,fields,reprompt,login_uri,...``
with the collection names comma-joined. Columns are read by name. Several
URIs are comma-joined in one cell, custom fields are ``name: value`` lines.
Both joins are ambiguous for some values; the exporter refuses those entries
(CannotExport) rather than write a file that reads back differently.
``favorite`` and ``reprompt`` are kept in ``extra`` as ``bitwarden.*``, shared
with the JSON format; collections as ``bitwarden.collections``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._entry import Entry
from .._errors import CannotExport, MalformedFile
from ._common import NewId, extras, new_uuid
from ._csv import Table, decode, drop_unknown_columns, write_csv
from ._loss import Skips

__all__ = [
    "HEADER",
    "HOLDS",
    "ORG_HEADER",
    "export_bitwarden_csv",
    "join_fields",
    "parse_bitwarden_csv",
    "split_fields",
]

NAME = "bitwarden-csv"
HEADER = (
    "folder",
    "favorite",
    "type",
    "name",
    "notes",
    "fields",
    "reprompt",
    "login_uri",
    "login_username",
    "login_password",
    "login_totp",
)
ORG_HEADER = ("collections", *HEADER[2:])
HOLDS = frozenset(
    {
        "type:login",
        "type:note",
        "name",
        "notes",
        "folder",
        "other_urls",
        "fields",
        "totp",
        "collections",
    }
)
_TYPES = ("login", "note")


def split_fields(cell: str) -> tuple[tuple[str, str], ...] | None:
    """Custom fields from ``name: value`` lines; None if a line has no ``: ``."""
    if not cell:
        return ()
    out = []
    for line in cell.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            return None
        out.append((name, value))
    return tuple(out)


def join_fields(fields: tuple[tuple[str, str], ...]) -> str | None:
    """The ``fields`` cell; None if some name or value would not read back the same."""
    for name, value in fields:
        if ": " in name or "\n" in name or "\n" in value:
            return None
    return "\n".join(f"{name}: {value}" for name, value in fields)


def _collections_cell(names: str) -> str:
    """Collection names (as the CSV writes them) in the ``bitwarden.collections`` form."""
    return json.dumps([{"name": n} for n in names.split(",")], ensure_ascii=False)


def parse_bitwarden_csv(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every login and secure note, created and updated at ``now`` (no times in the CSV)."""
    table = Table(NAME, decode(NAME, data), ("type", "name"), ("collections", *HEADER))
    drop_unknown_columns(NAME, table, skips or Skips())
    entries = []
    for line, row in table.rows:
        if row["type"] not in _TYPES:
            raise MalformedFile(NAME, line, f"type must be login or note, not {row['type']!r}")
        if row["favorite"] not in ("", "1", "0"):
            raise MalformedFile(NAME, line, f"favorite must be empty, 0 or 1: {row['favorite']!r}")
        if row["reprompt"] not in ("", "0", "1"):
            raise MalformedFile(NAME, line, f"reprompt must be 0 or 1: {row['reprompt']!r}")
        fields = split_fields(row["fields"])
        if fields is None:
            raise MalformedFile(NAME, line, "a custom field line has no ': ' separator")
        note = row["type"] == "note"
        if note and any(row[c] for c in HEADER[7:]):
            raise MalformedFile(NAME, line, "a secure note with login_* values")
        uris = row["login_uri"].split(",") if row["login_uri"] else [""]
        kept = {"bitwarden__favorite": row["favorite"], "bitwarden__reprompt": row["reprompt"]}
        if row["collections"]:
            kept["bitwarden__collections"] = _collections_cell(row["collections"])
        entries.append(
            Entry(
                id=new_id(),
                type=row["type"],
                name=row["name"],
                url=uris[0],
                other_urls=tuple(uris[1:]),
                username=row["login_username"],
                password=row["login_password"],
                notes=row["notes"],
                otpauth=row["login_totp"] or None,
                folder=row["folder"],
                fields=tuple((n, v, "text") for n, v in fields),
                created=now,
                updated=now,
                extra=extras(**kept),
            )
        )
    return entries


def _collection_names(e: Entry) -> str:
    cell = e.extras.get("bitwarden.collections")
    if cell is None:
        return ""
    try:
        names = [c["name"] for c in json.loads(cell)]
    except (ValueError, TypeError, KeyError) as err:
        raise CannotExport(NAME, e.id, "bitwarden.collections is not valid") from err
    if any("," in n or not n for n in names):
        raise CannotExport(NAME, e.id, "a collection name with a comma (or empty)")
    return ",".join(names)


def _row(e: Entry, org: bool) -> tuple[str, ...]:
    urls = (e.url, *e.other_urls) if e.url or e.other_urls else ()
    if any("," in u for u in urls) or (e.other_urls and not all(urls)):
        raise CannotExport(NAME, e.id, "a URL with a comma, or an empty URL among several")
    fields = join_fields(tuple((n, v) for n, v, _ in e.fields))
    if fields is None:
        raise CannotExport(NAME, e.id, "a custom field with a line break or ': ' in its name")
    x = e.extras
    kind = e.type if e.type in _TYPES else "login"
    if x.get("bitwarden.favorite", "") not in ("", "0", "1"):
        raise CannotExport(NAME, e.id, "bitwarden.favorite is not valid")
    reprompt = x.get("bitwarden.reprompt", "0")
    if reprompt not in ("", "0", "1"):
        raise CannotExport(NAME, e.id, "bitwarden.reprompt is not 0 or 1")
    head = (_collection_names(e),) if org else (e.folder, x.get("bitwarden.favorite", ""))
    return (
        *head,
        kind,
        e.name,
        e.notes,
        fields,
        reprompt,
        ",".join(urls),
        e.username,
        e.password,
        e.otpauth or "",
    )


def export_bitwarden_csv(entries: Sequence[Entry]) -> bytes:
    """What Bitwarden's CSV carries: no times, no history, one folder level; the
    organization form (collections, no folders) when any entry is in a collection."""
    org = any("bitwarden.collections" in e.extras for e in entries)
    return write_csv([ORG_HEADER if org else HEADER, *(_row(e, org) for e in entries)])
