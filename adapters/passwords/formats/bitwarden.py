"""Bitwarden's unencrypted CSV export (personal vault).

``folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,
login_password,login_totp``: several URIs comma-joined in one cell, custom
fields as ``name: value`` lines. Both joins are ambiguous for some values; the
exporter refuses those entries (CannotExport) rather than write a file that
reads back differently. ``favorite``, ``reprompt`` and a ``note`` type are kept
in ``extra`` as ``bitwarden.*``, shared with the JSON format.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._entry import Entry
from .._errors import CannotExport, MalformedFile
from ._common import NewId, extras, new_uuid
from ._csv import Table, decode, write_csv

__all__ = ["HEADER", "export_bitwarden_csv", "join_fields", "parse_bitwarden_csv", "split_fields"]

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


def parse_bitwarden_csv(data: bytes, *, now: int, new_id: NewId = new_uuid) -> list[Entry]:
    """Every login and secure note, created and updated at ``now`` (no times in the CSV)."""
    table = Table(NAME, decode(NAME, data), [HEADER])
    entries = []
    for line, row in table.rows:
        if row["type"] not in _TYPES:
            raise MalformedFile(NAME, line, f"type must be login or note, not {row['type']!r}")
        if row["favorite"] not in ("", "1"):
            raise MalformedFile(NAME, line, f"favorite must be empty or 1: {row['favorite']!r}")
        if row["reprompt"] not in ("", "0", "1"):
            raise MalformedFile(NAME, line, f"reprompt must be 0 or 1: {row['reprompt']!r}")
        fields = split_fields(row["fields"])
        if fields is None:
            raise MalformedFile(NAME, line, "a custom field line has no ': ' separator")
        uris = row["login_uri"].split(",") if row["login_uri"] else [""]
        kept = {"bitwarden__favorite": row["favorite"], "bitwarden__reprompt": row["reprompt"]}
        if row["type"] != "login":
            kept["bitwarden__type"] = row["type"]
        entries.append(
            Entry(
                id=new_id(),
                name=row["name"],
                url=uris[0],
                other_urls=tuple(uris[1:]),
                username=row["login_username"],
                password=row["login_password"],
                notes=row["notes"],
                otpauth=row["login_totp"] or None,
                folder=row["folder"],
                fields=fields,
                created=now,
                updated=now,
                extra=extras(**kept),
            )
        )
    return entries


def _row(e: Entry) -> tuple[str, ...]:
    urls = (e.url, *e.other_urls) if e.url or e.other_urls else ()
    if any("," in u for u in urls) or (e.other_urls and not all(urls)):
        raise CannotExport(NAME, e.id, "a URL with a comma, or an empty URL among several")
    fields = join_fields(e.fields)
    if fields is None:
        raise CannotExport(NAME, e.id, "a custom field with a line break or ': ' in its name")
    x = e.extras
    kind = x.get("bitwarden.type", "login")
    if kind not in _TYPES or x.get("bitwarden.favorite", "") not in ("", "1"):
        raise CannotExport(NAME, e.id, "bitwarden.type or bitwarden.favorite is not valid")
    reprompt = x.get("bitwarden.reprompt", "0")
    if reprompt not in ("", "0", "1"):
        raise CannotExport(NAME, e.id, "bitwarden.reprompt is not 0 or 1")
    return (
        e.folder,
        x.get("bitwarden.favorite", ""),
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
    """What Bitwarden's CSV carries: no times, no history, one folder level."""
    return write_csv([HEADER, *map(_row, entries)])
