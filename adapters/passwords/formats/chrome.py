"""Chrome and Chromium's password CSV: ``name,url,username,password,note``.

Chrome quotes only where needed, doubles quotes and ends lines with LF.
Older versions wrote no ``note`` column; we read both and write the current one.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._entry import Entry
from ._common import NewId, new_uuid
from ._csv import Table, decode, drop_unknown_columns, write_csv
from ._loss import Skips

__all__ = ["HEADER", "HOLDS", "export_chrome", "parse_chrome"]

NAME = "chrome"
HEADER = ("name", "url", "username", "password", "note")
HOLDS = frozenset({"type:login", "name", "notes"})


def parse_chrome(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every row as an entry created and updated at ``now`` (Chrome carries no times)."""
    table = Table(NAME, decode(NAME, data), HEADER[1:4], ("name", "note"))
    drop_unknown_columns(NAME, table, skips or Skips())
    return [
        Entry(
            id=new_id(),
            name=row["name"],
            url=row["url"],
            username=row["username"],
            password=row["password"],
            notes=row["note"],
            created=now,
            updated=now,
        )
        for _, row in table.rows
    ]


def export_chrome(entries: Sequence[Entry]) -> bytes:
    """Name, URL, username, password and notes; Chrome has no place for the rest."""
    rows = [HEADER] + [(e.name, e.url, e.username, e.password, e.notes) for e in entries]
    return write_csv(rows)
