"""LastPass's CSV export: ``url,username,password,totp,extra,name,grouping,fav``.

Older exports have no ``totp`` column; columns are read by name. A secure note
has the URL ``http://sn`` and its text in ``extra``; a typed note's text starts
with ``NoteType:<type>`` followed by ``Key:value`` lines. Credit cards become
cards and SSH keys SSH-key items (the values they have no detail for stay in
the notes, word for word); every other note type is a secure note holding the
whole text. ``grouping`` (``Parent\\Child``) becomes the folder. LastPass
keeps a TOTP as a bare base32 secret; it becomes an otpauth URI.
"""

from __future__ import annotations

from urllib.parse import quote

from .._entry import Entry
from .._errors import MalformedFile
from ._common import NewId, extras, new_uuid
from ._csv import Table, decode, drop_unknown_columns
from ._loss import Skips

__all__ = ["parse_lastpass"]

NAME = "lastpass-csv"
COLUMNS = ("url", "username", "password", "totp", "extra", "name", "grouping", "fav")
_NOTE_URL = "http://sn"
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_CARD = {
    "Name on Card": "cardholderName",
    "Type": "brand",
    "Number": "number",
    "Security Code": "code",
}
_SSH = {"Private Key": "privateKey", "Public Key": "publicKey"}


def _typed(extra: str) -> tuple[str, list[tuple[str, str]], str]:
    """(note type, Key:value pairs, free notes) of a typed note. A line without ``:``
    continues the value before it (a private key); ``Notes:`` takes every line after it."""
    first, *body = extra.split("\n")
    pairs: list[tuple[str, str]] = []
    for idx, line in enumerate(body):
        key, sep, value = line.partition(":")
        if sep and key == "Notes":
            return first.removeprefix("NoteType:"), pairs, "\n".join([value, *body[idx + 1 :]])
        if sep or not pairs:
            pairs.append((key, value) if sep else ("", line))
        else:
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + "\n" + line)
    return first.removeprefix("NoteType:"), pairs, ""


def _details(kind: str, extra: str) -> tuple[str, tuple[tuple[str, str], ...], str] | None:
    """(type, details, notes) for a card or SSH key note; None for any other note."""
    note_type, pairs, notes = _typed(extra)
    names = {"Credit Card": _CARD, "SSH Key": _SSH}.get(note_type)
    if names is None:
        return None
    details: dict[str, str] = {}
    left: list[str] = []
    for key, value in pairs:
        if key in names:
            details[names[key]] = value
        elif key == "Expiration Date" and "," in value:
            month, _, year = value.partition(",")
            if month in _MONTHS:
                details["expMonth"] = str(_MONTHS.index(month) + 1)
                details["expYear"] = year
            else:
                left.append(f"{key}:{value}")
        elif value:
            left.append(f"{key}:{value}" if key else value)
    kept = "\n".join([*left, notes] if notes else left)
    items = tuple(sorted((k, v) for k, v in details.items() if v))
    return ("card" if note_type == "Credit Card" else "ssh-key"), items, kept


def _otpauth(secret: str, name: str, username: str) -> str | None:
    if not secret:
        return None
    if secret.startswith("otpauth://"):
        return secret
    label = quote(f"{name}:{username}" if username else name or "LastPass", safe=":@")
    return f"otpauth://totp/{label}?secret={secret.replace(' ', '').upper()}"


def parse_lastpass(
    data: bytes, *, now: int, new_id: NewId = new_uuid, skips: Skips | None = None
) -> list[Entry]:
    """Every site and secure note, created and updated at ``now`` (no times in the CSV)."""
    table = Table(NAME, decode(NAME, data), ("url", "username", "password", "name"), COLUMNS)
    drop_unknown_columns(NAME, table, skips or Skips())
    out = []
    for line, row in table.rows:
        if row["fav"] not in ("", "0", "1"):
            raise MalformedFile(NAME, line, f"fav must be 0 or 1: {row['fav']!r}")
        base = {
            "id": new_id(),
            "name": row["name"],
            "folder": row["grouping"].replace("\\", "/"),
            "created": now,
            "updated": now,
            "extra": extras(lastpass__fav=row["fav"]),
        }
        if row["url"] == _NOTE_URL:
            if row["username"] or row["password"] or row["totp"]:
                raise MalformedFile(NAME, line, "a secure note with a username or password")
            typed = _details("", row["extra"]) if row["extra"].startswith("NoteType:") else None
            if typed is None:
                out.append(Entry(type="note", notes=row["extra"], **base))  # type: ignore[arg-type]
            else:
                kind, details, notes = typed
                out.append(Entry(type=kind, details=details, notes=notes, **base))  # type: ignore[arg-type]
            continue
        out.append(
            Entry(
                url=row["url"],
                username=row["username"],
                password=row["password"],
                notes=row["extra"],
                otpauth=_otpauth(row["totp"], row["name"], row["username"]),
                **base,  # type: ignore[arg-type]
            )
        )
    return out
