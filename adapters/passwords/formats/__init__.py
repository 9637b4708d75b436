"""Import and export formats, by name, as the real products write them.

Every parser reads the whole file before returning, so a malformed file
raises ``MalformedFile`` (with its line) and nothing is half-imported; a
value the vault cannot keep refuses the file (``CannotImport``) unless the
caller's :class:`Skips` allows leaving it out, and then it is listed.
Exporters raise ``CannotExport`` rather than write a value that would read
back differently, and :func:`export_entries` refuses (or with ``lossy``
lists) every field a format has no place for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .._entry import Entry
from .._errors import CannotExport
from ._common import NewId, new_uuid
from ._loss import Left, Skips, lost_fields
from ._secrets import FileSecrets
from .bitwarden import HOLDS as BW_CSV_HOLDS
from .bitwarden import export_bitwarden_csv, parse_bitwarden_csv
from .bitwarden_json import parse_bitwarden_json
from .bitwarden_json_export import HOLDS as BW_JSON_HOLDS
from .bitwarden_json_export import export_bitwarden_json
from .chrome import HOLDS as CHROME_HOLDS
from .chrome import export_chrome, parse_chrome
from .firefox import HOLDS as FIREFOX_HOLDS
from .firefox import export_firefox, parse_firefox
from .kdbx import parse_kdbx
from .keepassxc import HOLDS as KEEPASSXC_HOLDS
from .keepassxc import export_keepassxc, parse_keepassxc
from .lastpass import parse_lastpass
from .onepux import parse_1pux

__all__ = [
    "FORMATS",
    "FileSecrets",
    "Format",
    "Left",
    "Parser",
    "Skips",
    "export_entries",
    "import_entries",
]


class Parser(Protocol):
    """Bytes of a whole file to entries; ``now`` stands in for times a format lacks."""

    def __call__(
        self, data: bytes, *, now: int, new_id: NewId = ..., skips: Skips | None = ...
    ) -> list[Entry]: ...


@dataclass(frozen=True)
class Format:
    """One product's file format; ``holds`` names what its files can carry (see lost_fields)."""

    name: str
    description: str
    suffix: str
    parse: Callable[..., list[Entry]]
    export: Callable[[Sequence[Entry]], bytes] | None
    holds: frozenset[str] = frozenset()
    protected: bool = False
    """The parser takes ``secrets`` (the file may be encrypted)."""


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "chrome",
            "Chrome / Chromium / Edge passwords CSV",
            ".csv",
            parse_chrome,
            export_chrome,
            CHROME_HOLDS,
        ),
        Format(
            "firefox", "Firefox logins CSV", ".csv", parse_firefox, export_firefox, FIREFOX_HOLDS
        ),
        Format(
            "bitwarden-csv",
            "Bitwarden CSV (personal or organization)",
            ".csv",
            parse_bitwarden_csv,
            export_bitwarden_csv,
            BW_CSV_HOLDS,
        ),
        Format(
            "bitwarden-json",
            "Bitwarden JSON (personal or organization)",
            ".json",
            parse_bitwarden_json,
            export_bitwarden_json,
            BW_JSON_HOLDS,
            protected=True,
        ),
        Format(
            "keepassxc-csv",
            "KeePassXC CSV",
            ".csv",
            parse_keepassxc,
            export_keepassxc,
            KEEPASSXC_HOLDS,
        ),
        Format(
            "kdbx",
            "KeePass / KeePassXC database (KDBX 3.1, 4)",
            ".kdbx",
            parse_kdbx,
            None,
            protected=True,
        ),
        Format("lastpass-csv", "LastPass CSV", ".csv", parse_lastpass, None),
        Format("1pux", "1Password unencrypted export (.1pux)", ".1pux", parse_1pux, None),
    )
}


def _format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def import_entries(
    format_name: str,
    data: bytes,
    *,
    now: int,
    new_id: NewId = new_uuid,
    skips: Skips | None = None,
    secrets: FileSecrets | None = None,
) -> list[Entry]:
    """Parse a whole export file; all entries or an error, never some (unless ``skips``
    allows leaving out what cannot be kept, and then ``skips.left`` lists it).
    ``secrets`` open an encrypted file (a password is asked for only if needed)."""
    fmt = _format(format_name)
    if fmt.protected:
        return fmt.parse(data, now=now, new_id=new_id, skips=skips, secrets=secrets)
    return fmt.parse(data, now=now, new_id=new_id, skips=skips)


def export_entries(
    format_name: str, entries: Sequence[Entry], *, lossy: bool = False
) -> tuple[bytes, list[tuple[Entry, list[str]]]]:
    """Write entries as ``format_name``'s product would, and what each entry lost.

    Without ``lossy`` any field the format has no place for raises CannotExport
    naming the entry and the fields; with it the file is written without them and
    the second value lists them per entry (an entry whose type the format lacks is
    not written at all, listed as ``type <t>``).
    """
    fmt = _format(format_name)
    if fmt.export is None:
        raise ValueError(f"{format_name} is an import-only format")
    org = format_name == "bitwarden-csv" and any(
        "bitwarden.collections" in e.extras for e in entries
    )
    holds = fmt.holds - {"folder"} if org else fmt.holds
    losses = [(e, lost) for e in entries if (lost := lost_fields(e, holds))]
    if losses and not lossy:
        e, lost = losses[0]
        more = f" (and {len(losses) - 1} more entries)" if len(losses) > 1 else ""
        raise CannotExport(
            format_name,
            f"{e.name or e.url or e.id!r}",
            f"has {', '.join(lost)}, which {format_name} cannot hold{more}; "
            "export to bitwarden-json to keep everything, or pass --lossy",
        )
    written = [e for e in entries if "type:" + e.type in holds]  # others: not written at all
    return fmt.export(written), losses
