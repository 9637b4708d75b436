"""KeePassXC's CSV export (``keepassxc-cli export -f csv``, or the GUI's CSV export).

Every field quoted, LF line ends, times as ``YYYY-MM-DDTHH:MM:SSZ`` (second
precision). ``Group`` is a path starting at the database's root group
(``Root`` in the GUI, ``Passwords`` from ``keepassxc-cli db-create``); the
entry's ``folder`` is the path below the root, and the root's name is kept in
``extra`` as ``keepassxc.root`` so exporting writes the same path back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._entry import Entry
from .._errors import CannotExport, MalformedFile
from ._common import NewId, extras, iso_to_ms, ms_to_iso, new_uuid
from ._csv import Table, decode, drop_unknown_columns, write_csv
from ._loss import Skips

__all__ = ["HEADER", "HOLDS", "export_keepassxc", "parse_keepassxc"]

NAME = "keepassxc-csv"
HEADER = (
    "Group",
    "Title",
    "Username",
    "Password",
    "URL",
    "Notes",
    "TOTP",
    "Icon",
    "Last Modified",
    "Created",
)
DEFAULT_ROOT = "Root"
HOLDS = frozenset({"type:login", "name", "notes", "folder", "totp"})
_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z", re.ASCII)
_ICON = re.compile(r"\d{1,4}\Z", re.ASCII)


def _time(line: int, column: str, value: str) -> int:
    ms = iso_to_ms(value) if _SECONDS.match(value) else None
    if ms is None:
        raise MalformedFile(NAME, line, f"{column} is not a time like 2024-01-31T12:00:00Z")
    return ms


def parse_keepassxc(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every entry; ``now`` stands in for a time column that is missing or empty."""
    table = Table(NAME, decode(NAME, data), HEADER[1:5], (HEADER[0], *HEADER[5:]))
    drop_unknown_columns(NAME, table, skips or Skips())
    entries = []
    for line, row in table.rows:
        row["Icon"] = row["Icon"] or "0"
        for column in ("Last Modified", "Created"):
            row[column] = row[column] or ms_to_iso(now, millis=False)
        if not _ICON.match(row["Icon"]):
            raise MalformedFile(NAME, line, f"Icon is not a number: {row['Icon']!r}")
        root, _, folder = row["Group"].partition("/")
        entries.append(
            Entry(
                id=new_id(),
                name=row["Title"],
                url=row["URL"],
                username=row["Username"],
                password=row["Password"],
                notes=row["Notes"],
                otpauth=row["TOTP"] or None,
                folder=folder,
                updated=_time(line, "Last Modified", row["Last Modified"]),
                created=_time(line, "Created", row["Created"]),
                extra=extras(keepassxc__root=root, keepassxc__icon=row["Icon"]),
            )
        )
    return entries


def _row(e: Entry) -> tuple[str, ...]:
    x = e.extras
    root = x.get("keepassxc.root", DEFAULT_ROOT)
    icon = x.get("keepassxc.icon", "0")
    if "/" in root or not _ICON.match(icon):
        raise CannotExport(NAME, e.id, "keepassxc.root has a '/' or keepassxc.icon is not a number")
    return (
        f"{root}/{e.folder}" if e.folder else root,
        e.name,
        e.username,
        e.password,
        e.url,
        e.notes,
        e.otpauth or "",
        icon,
        ms_to_iso(e.updated, millis=False),
        ms_to_iso(e.created, millis=False),
    )


def export_keepassxc(entries: Sequence[Entry]) -> bytes:
    """Group path, fields and times to the second; no history or custom fields."""
    return write_csv([HEADER, *map(_row, entries)], quote_all=True)
