"""The adapter interface: how an application plugs into Keystead.

An adapter is one small object, found through the ``keystead.adapters`` entry
point group, so a third party can ship one as its own package. It names the
collections it keeps its items in, gives CLI command groups, and may add
routes to the service. Core never imports an adapter module by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter

    from .service.context import ServiceContext

__all__ = ["Adapter", "discover"]

GROUP = "keystead.adapters"


@runtime_checkable
class Adapter(Protocol):
    """One application on top of the core."""

    name: str
    collections: tuple[str, ...]
    commands: tuple[str, ...]

    def cli_groups(self) -> Mapping[str, click.Command]:
        """CLI groups by command name (``ssh``, ``passwords``...). Imported lazily by the CLI."""
        ...

    def router(self, ctx: ServiceContext) -> APIRouter | None:
        """Extra service routes, or None."""
        ...

    # Optional members (looked up with getattr, so an adapter may leave them out):
    #
    # quick_commands: tuple[tuple[str, ...], ...]
    #     Command paths, e.g. ("passwords", "get"), that the unlock agent may run
    #     in-process for the ``keystead`` launcher: they read no stdin, name no
    #     files relative to the working directory, and need no terminal.
    # resolver(collection) -> callable | None
    #     How ``keystead sync`` merges a queued offline edit that met a newer version.
    # synced(device, collection) -> None
    #     Called by ``keystead sync`` after it synced one of the adapter's collections,
    #     so that local derived state (the vault's lookup index) is current at once.


def discover(names: Mapping[str, Adapter] | None = None) -> dict[str, Adapter]:
    """Every installed adapter (``names`` instead, when given); a broken one is skipped
    rather than breaking the rest."""
    return dict(names) if names is not None else dict(_installed())


@cache
def _installed() -> dict[str, Adapter]:
    """Scanned once per process: reading every distribution's entry points costs ~5 ms,
    which the unlock agent would otherwise pay on every quick command."""
    found: dict[str, Adapter] = {}
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
        except (ImportError, AttributeError):
            continue
        if isinstance(obj, Adapter):
            found[obj.name] = obj
    return found


def all_collections(adapters: Mapping[str, Adapter]) -> list[str]:
    return sorted({c for a in adapters.values() for c in a.collections})
