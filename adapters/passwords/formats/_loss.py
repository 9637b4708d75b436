"""What an import or export leaves out, so that nothing is dropped in silence.

An import collects left-out values in :class:`Skips`: by default the first one
refuses the whole file (``CannotImport`` naming item and field); with
``allow`` the rest is imported and every left-out value is listed. An export
asks :func:`lost_fields` what a format cannot hold of each entry.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from .._entry import Entry
from .._errors import CannotImport
from ._common import site_name

__all__ = ["Left", "Skips", "lost_fields"]


@dataclass(frozen=True)
class Left:
    """One value left out: ``field`` of ``item`` (a whole item when field is ``"item"``)."""

    item: str
    field: str
    problem: str


@dataclass
class Skips:
    """The import's policy on values it cannot keep, and the list of those it left out."""

    allow: bool = False
    left: list[Left] = field(default_factory=list)

    def drop(self, format_name: str, item: str, what: str, problem: str) -> None:
        """Record that ``what`` of ``item`` is left out, or refuse the whole import."""
        if not self.allow:
            raise CannotImport(format_name, item, what, problem)
        self.left.append(Left(item, what, problem))

    @property
    def items_dropped(self) -> int:
        return sum(1 for x in self.left if x.field == "item")


def lost_fields(entry: Entry, holds: Collection[str]) -> list[str]:
    """The fields of ``entry`` that a format holding ``holds`` would drop.

    ``holds`` names: ``type:<t>`` per item type, ``name`` (else the name must be
    the URL's host), ``notes``, ``folder``, ``other_urls``, ``fields``,
    ``field_kinds`` (hidden/boolean/linked), ``totp``, ``history``, ``passkeys``,
    ``details``, ``collections``.
    """
    lost = []
    if "type:" + entry.type not in holds:
        return [f"type {entry.type} (the whole entry)"]
    if entry.name and "name" not in holds and entry.name != site_name(entry.url):
        lost.append("name")
    checks = (
        ("notes", bool(entry.notes)),
        ("folder", bool(entry.folder)),
        ("other_urls", bool(entry.other_urls)),
        ("fields", bool(entry.fields)),
        ("totp", entry.otpauth is not None),
        ("history", bool(entry.history)),
        ("passkeys", bool(entry.passkeys)),
        ("details", bool(entry.details)),
        ("collections", "bitwarden.collections" in entry.extras),
    )
    lost += [name for name, present in checks if present and name not in holds]
    if entry.fields and "fields" in holds and "field_kinds" not in holds:
        if any(kind != "text" for _, _, kind in entry.fields):
            lost.append("field_kinds")
    return lost
