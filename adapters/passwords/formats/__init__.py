"""Import and export formats, by name, as the real products write them.

Every parser reads the whole file before returning, so a malformed file
raises ``MalformedFile`` (with its line) and nothing is half-imported.
Exporters raise ``CannotExport`` rather than write a value that would read
back differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .._entry import Entry
from ._common import NewId, new_uuid
from .bitwarden import export_bitwarden_csv, parse_bitwarden_csv
from .bitwarden_json import export_bitwarden_json, parse_bitwarden_json
from .chrome import export_chrome, parse_chrome
from .firefox import export_firefox, parse_firefox
from .keepassxc import export_keepassxc, parse_keepassxc

__all__ = ["FORMATS", "Format", "Parser", "export_entries", "import_entries"]


class Parser(Protocol):
    """Bytes of a whole file to entries; ``now`` stands in for times a format lacks."""

    def __call__(self, data: bytes, *, now: int, new_id: NewId = ...) -> list[Entry]: ...


@dataclass(frozen=True)
class Format:
    """One product's file format."""

    name: str
    description: str
    suffix: str
    parse: Parser
    export: Callable[[Sequence[Entry]], bytes]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "chrome", "Chrome / Chromium / Edge passwords CSV", ".csv", parse_chrome, export_chrome
        ),
        Format("firefox", "Firefox logins CSV", ".csv", parse_firefox, export_firefox),
        Format(
            "bitwarden-csv",
            "Bitwarden CSV (unencrypted)",
            ".csv",
            parse_bitwarden_csv,
            export_bitwarden_csv,
        ),
        Format(
            "bitwarden-json",
            "Bitwarden JSON (unencrypted)",
            ".json",
            parse_bitwarden_json,
            export_bitwarden_json,
        ),
        Format("keepassxc-csv", "KeePassXC CSV", ".csv", parse_keepassxc, export_keepassxc),
    )
}


def _format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def import_entries(
    format_name: str, data: bytes, *, now: int, new_id: NewId = new_uuid
) -> list[Entry]:
    """Parse a whole export file; all entries or MalformedFile, never some."""
    return _format(format_name).parse(data, now=now, new_id=new_id)


def export_entries(format_name: str, entries: Sequence[Entry]) -> bytes:
    """Write entries as ``format_name``'s product would; CannotExport if it would lose a value."""
    return _format(format_name).export(entries)
