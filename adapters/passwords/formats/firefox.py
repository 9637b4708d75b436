"""Firefox's password CSV (about:logins, Export).

Every field quoted, CRLF between records and none after the last; times are
milliseconds since the epoch. ``httpRealm``, ``formActionOrigin``, ``guid``
and ``timeLastUsed`` have no Entry field and live in ``extra`` as ``firefox.*``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._entry import MAX_TIME, Entry
from .._errors import CannotExport, MalformedFile
from ._common import NewId, as_uuid, extras, new_uuid, site_name
from ._csv import Table, decode, drop_unknown_columns, write_csv
from ._loss import Skips

__all__ = ["HEADER", "HOLDS", "export_firefox", "parse_firefox"]

NAME = "firefox"
HEADER = (
    "url",
    "username",
    "password",
    "httpRealm",
    "formActionOrigin",
    "guid",
    "timeCreated",
    "timeLastUsed",
    "timePasswordChanged",
)
HOLDS = frozenset({"type:login"})
_MS = re.compile(r"\d{1,16}\Z", re.ASCII)


def _ms(line: int, column: str, value: str) -> int:
    if not _MS.match(value) or int(value) > MAX_TIME:
        raise MalformedFile(NAME, line, f"{column} is not a time in milliseconds: {value!r}")
    return int(value)


def parse_firefox(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every login; ``now`` stands in for a time column that is missing or empty."""
    table = Table(NAME, decode(NAME, data), HEADER[:3], HEADER[3:])
    drop_unknown_columns(NAME, table, skips or Skips())
    entries = []
    for line, row in table.rows:
        for column in ("timeCreated", "timePasswordChanged"):
            row[column] = row[column] or str(now)
        created = _ms(line, "timeCreated", row["timeCreated"])
        changed = _ms(line, "timePasswordChanged", row["timePasswordChanged"])
        if row["timeLastUsed"]:
            _ms(line, "timeLastUsed", row["timeLastUsed"])
        entries.append(
            Entry(
                id=new_id(),
                name=site_name(row["url"]),
                url=row["url"],
                username=row["username"],
                password=row["password"],
                created=created,
                updated=changed,
                extra=extras(
                    firefox__httpRealm=row["httpRealm"],
                    firefox__formActionOrigin=row["formActionOrigin"],
                    firefox__guid=row["guid"],
                    firefox__timeLastUsed=row["timeLastUsed"],
                ),
            )
        )
    return entries


def _row(e: Entry) -> tuple[str, ...]:
    x = e.extras
    last_used = x.get("firefox.timeLastUsed", str(e.updated))
    if not _MS.match(last_used) or int(last_used) > MAX_TIME:
        raise CannotExport(NAME, e.id, "firefox.timeLastUsed is not a time in milliseconds")
    return (
        e.url,
        e.username,
        e.password,
        x.get("firefox.httpRealm", ""),
        x.get("firefox.formActionOrigin", ""),
        x.get("firefox.guid", "{" + as_uuid(e.id) + "}"),
        str(e.created),
        last_used,
        str(e.updated),
    )


def export_firefox(entries: Sequence[Entry]) -> bytes:
    """URL, username, password, times and the Firefox-only values kept in ``extra``."""
    rows = [HEADER, *map(_row, entries)]
    return write_csv(rows, quote_all=True, newline="\r\n", final_newline=False)
