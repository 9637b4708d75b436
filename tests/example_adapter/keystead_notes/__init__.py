"""An example third-party adapter, "notes", built only from Keystead's public interface.

One collection (``notes``: this account's notes, end to end encrypted by the core)
and one channel of the same name (other accounts drop a note for this one; a
device reads it with the ``notes`` scope). It
declares both, gets capability objects for exactly those, and never touches
the store, the raw client or the keystore. Shipped as its own distribution: the
``keystead.adapters`` entry point in ``keystead_notes-0.1.dist-info`` is how
Keystead finds it (see docs/ADAPTERS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from keystead.core.adapter import Channel, Poster

if TYPE_CHECKING:
    import click

__all__ = ["adapter"]


class NotesAdapter:
    """Notes: a collection and an inbox channel."""

    name = "notes"
    collections = ("notes",)
    commands = ("notes",)
    # Only other accounts drop notes here; this account's own devices write the collection.
    channels = (Channel("notes", frozenset({Poster.OTHER_ACCOUNTS})),)

    def cli_groups(self) -> Mapping[str, click.Command]:
        from .cli import notes

        return {"notes": notes}


adapter = NotesAdapter()
