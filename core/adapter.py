"""The adapter interface: how an application plugs into Keystead.

An adapter is one small object, found through the ``keystead.adapters`` entry
point group, so a third party can ship one as its own package. It *declares*
what it uses, and gets capability objects for exactly that
(:mod:`keystead.core.capabilities`), never the whole ``Store``, the raw client
or the keystore's dict:

- ``collections``: the device scopes / collections its items live in;
- ``channels``: spool channels, each with who may post to it (:class:`Poster`);
  the service refuses every other poster. A channel is named after one of the
  adapter's collections: devices read it with that scope;
- ``namespaces``: its record namespaces at the service (``"confirm.rp"``...);
- ``keystore_slot``: the name of its slot in the device keystore;
- ``provides``: named services for other adapters (a ``Confirmer``...), so an
  adapter asks for a service instead of importing another adapter.

Core never imports an adapter module by name. Required members are in
:class:`Adapter`; the optional ones are the small protocols below it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter

    from .capabilities import ServiceCapabilities
    from .service.context import ServiceContext

__all__ = [
    "Adapter",
    "BrokenAdapter",
    "Channel",
    "DeclaresChannels",
    "DeclaresKeystoreSlot",
    "DeclaresNamespaces",
    "HasCapabilityRoutes",
    "HasQuickCommands",
    "HasRotationHook",
    "HasSyncedHook",
    "HasResolver",
    "HasRouter",
    "Poster",
    "ProvidesServices",
    "broken",
    "discover",
]

GROUP = "keystead.adapters"


class Poster(StrEnum):
    """Who may post into a channel of an account."""

    OWN_DEVICES = "own-devices"
    """Live devices of the account the channel belongs to (generic spool route)."""
    OTHER_ACCOUNTS = "other-accounts"
    """Live devices of any other account (generic spool route)."""
    RELYING_PARTY = "relying-party"
    """A relying party, only through the adapter's own route (the service writes the row)."""
    SERVICE = "service"
    """The service itself, on behalf of the adapter's routes."""


GENERIC_POSTERS = frozenset({Poster.OWN_DEVICES, Poster.OTHER_ACCOUNTS})
"""Posters the generic ``POST /v1/accounts/{a}/spool/{channel}`` route can stand for."""


@dataclass(frozen=True)
class Channel:
    """A spool channel and who may post to it; an empty poster set is refused (fail closed)."""

    name: str
    posters: frozenset[Poster]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError("a channel name is a non-empty string without '/'")
        if not self.posters:
            raise ValueError(f"channel {self.name!r}: say who may post to it")
        for p in self.posters:
            Poster(p)

    def accepts_device(self, *, own: bool) -> bool:
        """Whether the generic spool route may take a post from a device of this account
        (``own``) or of another account."""
        return (Poster.OWN_DEVICES if own else Poster.OTHER_ACCOUNTS) in self.posters


@runtime_checkable
class Adapter(Protocol):
    """One application on top of the core: what every adapter must have."""

    # Read-only members: an adapter may declare them as plain class attributes.
    @property
    def name(self) -> str: ...

    @property
    def collections(self) -> tuple[str, ...]: ...

    @property
    def commands(self) -> tuple[str, ...]: ...

    def cli_groups(self) -> Mapping[str, click.Command]:
        """CLI groups by command name (``ssh``, ``passwords``...). Imported lazily by the CLI."""
        ...


# ----------------------------------------------------------------- optional members
@runtime_checkable
class DeclaresChannels(Protocol):
    """The adapter's spool channels and their posters."""

    channels: tuple[Channel, ...]


@runtime_checkable
class DeclaresNamespaces(Protocol):
    """Record namespaces at the service; a namespace ``ns`` also covers ``ns.*``."""

    namespaces: tuple[str, ...]


@runtime_checkable
class DeclaresKeystoreSlot(Protocol):
    """The name of the adapter's slot in the device keystore."""

    keystore_slot: str


@runtime_checkable
class HasQuickCommands(Protocol):
    """Command paths, e.g. ``("passwords", "get")``, that the unlock agent may run in-process
    for the ``keystead`` launcher: they read no stdin, name no files relative to the working
    directory, and need no terminal."""

    quick_commands: tuple[tuple[str, ...], ...]


@runtime_checkable
class HasRotationHook(Protocol):
    """State an adapter keeps signed by the account key (ssh's published imported keys) must
    be signed again once an admin removal rotated that key: the removed admin holds the old
    one. Called on the admin device that made the removal; returns a line to show, or None."""

    def after_account_key_rotation(self, device: Any) -> str | None: ...


@runtime_checkable
class HasSyncedHook(Protocol):
    """Called by ``keystead sync`` after it synced one of the adapter's collections, so that
    local derived state (the vault's lookup index) is current at once."""

    def synced(self, device: Any, collection: str) -> None: ...


Resolver = Callable[..., Any]


@runtime_checkable
class HasResolver(Protocol):
    """How ``keystead sync`` merges a queued offline edit that met a newer version."""

    def resolver(self, collection: str) -> Resolver | None: ...


@runtime_checkable
class HasCapabilityRoutes(Protocol):
    """Service routes built only from the adapter's capabilities (the v2 way)."""

    def routes(self, caps: ServiceCapabilities) -> APIRouter | None: ...


@runtime_checkable
class HasRouter(Protocol):
    """Service routes over the whole :class:`ServiceContext` (the v1 way, being retired:
    prefer :class:`HasCapabilityRoutes`)."""

    def router(self, ctx: ServiceContext) -> APIRouter | None: ...


@runtime_checkable
class ProvidesServices(Protocol):
    """Named services for other adapters: ``{ServiceType: factory(capabilities)}``."""

    def services(self) -> Mapping[type[Any], Callable[..., Any]]: ...


# ----------------------------------------------------------------- discovery
@dataclass(frozen=True)
class BrokenAdapter:
    """An installed adapter that could not be used, and why (shown as one line)."""

    name: str
    why: str

    def line(self) -> str:
        return f"keystead: adapter {self.name!r} is not loaded: {self.why}"


def discover(names: Mapping[str, Adapter] | None = None) -> dict[str, Adapter]:
    """Every installed adapter (``names`` instead, when given). A broken one is left out
    and reported once on stderr (and by :func:`broken`), never dropped silently."""
    if names is not None:
        return dict(names)
    found, bad = _installed()
    if bad:
        _report(bad)
    return dict(found)


def broken() -> list[BrokenAdapter]:
    """The installed adapters that failed to load, and why."""
    return list(_installed()[1])


_reported = False


def _report(bad: tuple[BrokenAdapter, ...]) -> None:
    global _reported
    if not _reported:
        _reported = True
        for b in bad:
            print(b.line(), file=sys.stderr)


def check_adapter(obj: object) -> str | None:
    """Why ``obj`` is not a usable adapter, or None."""
    if not isinstance(obj, Adapter):
        missing = [
            m for m in ("name", "collections", "commands", "cli_groups") if not hasattr(obj, m)
        ]
        return f"it does not implement the Adapter interface (missing {', '.join(missing)})"
    if not isinstance(obj.name, str) or not obj.name:
        return "its name is not a non-empty string"
    for attr in ("collections", "commands"):
        value = getattr(obj, attr)
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            return f"{attr} is not a tuple of strings"
    if isinstance(obj, DeclaresChannels):
        if not all(isinstance(c, Channel) for c in obj.channels):
            return "channels is not a tuple of Channel"
        for c in obj.channels:
            if c.name not in obj.collections:
                return (
                    f"channel {c.name!r} is not one of its collections (devices read a "
                    "channel with the scope of the same name)"
                )
    return None


@cache
def _installed() -> tuple[dict[str, Adapter], tuple[BrokenAdapter, ...]]:
    """Scanned once per process: reading every distribution's entry points costs ~5 ms,
    which the unlock agent would otherwise pay on every quick command."""
    found: dict[str, Adapter] = {}
    bad: list[BrokenAdapter] = []
    for ep in entry_points(group=GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a third party's import-time failure: the boundary
            bad.append(BrokenAdapter(ep.name, f"{type(e).__name__}: {_one_line(str(e))}"))
            continue
        why = check_adapter(obj)
        if why is None and obj.name in found:
            why = f"another adapter is already called {obj.name!r}"
        if why is not None:
            bad.append(BrokenAdapter(ep.name, why))
            continue
        found[obj.name] = obj
    return found, tuple(bad)


def _one_line(text: str) -> str:
    from .text import printable

    return printable(text, 200)


# ----------------------------------------------------------------- what adapters declare
def all_collections(adapters: Mapping[str, Adapter]) -> list[str]:
    return sorted({c for a in adapters.values() for c in a.collections})


def channels_of(adapter: Adapter) -> tuple[Channel, ...]:
    return adapter.channels if isinstance(adapter, DeclaresChannels) else ()


def namespaces_of(adapter: Adapter) -> tuple[str, ...]:
    return adapter.namespaces if isinstance(adapter, DeclaresNamespaces) else ()


def channel_policies(adapters: Mapping[str, Adapter]) -> dict[str, Channel]:
    """Every declared channel by name; two adapters declaring one name is a programming error."""
    out: dict[str, Channel] = {}
    for a in adapters.values():
        for c in channels_of(a):
            if c.name in out:
                raise ValueError(f"channel {c.name!r} is declared twice")
            out[c.name] = c
    return out


def quick_commands(adapters: Mapping[str, Adapter]) -> list[tuple[str, ...]]:
    return [
        q for a in adapters.values() if isinstance(a, HasQuickCommands) for q in a.quick_commands
    ]


def resolvers(adapters: Mapping[str, Adapter]) -> dict[str, Resolver]:
    out: dict[str, Resolver] = {}
    for a in adapters.values():
        if isinstance(a, HasResolver):
            for coll in a.collections:
                if (fn := a.resolver(coll)) is not None:
                    out[coll] = fn
    return out
