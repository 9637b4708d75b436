"""Capability objects: what an adapter may touch, and nothing else.

An adapter declares its collections, channels, record namespaces and keystore
slot (:mod:`keystead.core.adapter`); these objects give it exactly those.

Device side (CLI commands, agents), from :func:`capabilities_for`:

- :class:`AdapterCapabilities` - its collections, channels, keystore slot,
  verified chains, its own service routes, and named services of other adapters;
- :class:`ChannelClient` - post to / read / delete from one channel of one account;
- :class:`KeystoreSlot` - the adapter's own part of the device keystore.

Service side (the adapter's routes), given to ``Adapter.routes``:

- :class:`ServiceCapabilities` - authenticate a request, read a JSON body, the clock,
  and :class:`RecordNamespace` / :class:`ServiceChannel` for what it declared.

Named services: :class:`Confirmer` ("ask this account's devices to approve")
is provided by the second-factor adapter and asked for by ssh; asking for a
service nobody installed raises :class:`ServiceUnavailable` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

from ._encoding import b64d, b64e
from .adapter import (
    Adapter,
    Channel,
    DeclaresKeystoreSlot,
    ProvidesServices,
    channels_of,
    discover,
    namespaces_of,
)
from .errors import Forbidden, FormatError, NotFound

if TYPE_CHECKING:
    from fastapi import Request

    from .chain import ChainState
    from .collections import Collection
    from .device import Device
    from .sealed import SealedKey
    from .service.config import ServiceConfig
    from .service.context import ServiceContext
    from .service.store import AuthDevice

__all__ = [
    "AdapterCapabilities",
    "ChannelClient",
    "ChannelMessage",
    "Confirmer",
    "KeystoreSlot",
    "RecordNamespace",
    "RequestNonce",
    "RouteClient",
    "ServiceCapabilities",
    "ServiceChannel",
    "ServiceUnavailable",
    "SshKeySource",
    "capabilities_for",
    "provider_of",
]

T = TypeVar("T")

RequestNonce = tuple[str, str, int, int]
"""A signed request's nonce as ``ServiceCapabilities.signed`` hands it to a route's work, to
pass on to one write: opaque to adapters."""


class _Provider(Adapter, ProvidesServices, Protocol):
    """An adapter that provides services."""


class ServiceUnavailable(NotFound):
    """No installed adapter provides the named service another adapter asked for."""


@runtime_checkable
class Confirmer(Protocol):
    """Ask the account's devices (those with the ``confirm`` scope) to approve ``message``.

    True only for a verified approval within ``wait`` seconds. With number matching
    (the default), ``show_number`` is called with the number the person must pick on
    the device; it must reach the person (a terminal), never the device's screen."""

    def confirm(
        self,
        message: str,
        *,
        wait: int = 60,
        number_matching: bool = True,
        show_number: Callable[[int], None] | None = None,
    ) -> bool: ...


@runtime_checkable
class SshKeySource(Protocol):
    """Private SSH keys kept by another application (the password vault's SSH-key items),
    for ``keystead ssh import --from-vault NAME``."""

    def ssh_private_key(self, name: str) -> bytes:
        """The key file's bytes (OpenSSH or PEM) of the item called ``name``;
        ``NotFound`` if there is none."""
        ...


# ================================================================== device side
@dataclass(frozen=True)
class ChannelMessage:
    """One spool row: ``sender`` is ``account/device`` (or ``confirm:RP`` for the service)."""

    id: int
    sender: str
    body: bytes
    created: int


class ChannelClient:
    """One declared channel of one account, over this device's signed client."""

    def __init__(
        self, device: Device, channel: Channel, account: str, server: str | None = None
    ) -> None:
        self._device, self.channel, self.account, self._server = device, channel, account, server

    def _url(self, *more: str) -> str:
        from .client import path

        return path("accounts", self.account, "spool", self.channel.name, *more)

    def post(self, body: bytes, *, expires: int | None = None) -> int:
        """Post ``body``; the service refuses a poster the channel does not accept (403)."""
        resp = self._device.client_for(self._server).post(
            self._url(), {"body": b64e(body), "expires": expires}
        )
        return int(resp["id"])

    def read(self, *, after: int = 0, limit: int = 1000, wait: int = 0) -> list[ChannelMessage]:
        """Rows after ``after`` (long-polling ``wait`` seconds); this account's channels only.
        A malformed row is skipped, never a reason to fail the whole listing."""
        resp = self._device.client_for(self._server).get(
            self._url(),
            params={"after": after, "limit": limit, "wait": wait or None},
            timeout=wait + 30,
        )
        out = []
        for m in resp.get("messages", []) if isinstance(resp, dict) else []:
            try:
                out.append(
                    ChannelMessage(
                        _int(m["id"]),
                        _str(m["sender"]),
                        b64d(m["body"], what="spool body"),
                        _int(m["created"]),
                    )
                )
            except (KeyError, TypeError, FormatError):
                continue
        return out

    def delete(self, message_id: int) -> None:
        self._device.client_for(self._server).delete(self._url(str(message_id)))


def _int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise FormatError("expected an integer")
    return v


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise FormatError("expected a string")
    return v


class KeystoreSlot:
    """The adapter's own part of the device keystore (a JSON object); :meth:`save` writes."""

    def __init__(self, device: Device, name: str) -> None:
        self._device, self.name = device, name

    def _data(self) -> dict[str, Any]:
        slot = self._device.keystore.data.setdefault(self.name, {})
        if not isinstance(slot, dict):
            raise FormatError(f"keystore slot {self.name!r} is not an object")
        return slot

    def get(self, key: str, default: Any = None) -> Any:
        return self._data().get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Set and save (the keystore file is rewritten atomically)."""
        self._data()[key] = value
        self._device.save()

    def get_or_create(self, key: str, make: Callable[[], Any]) -> Any:
        """The value at ``key``; if absent, ``make()`` once for this device even when several
        processes race: creation holds an exclusive lock and re-reads the keystore from disk,
        so two commands never end up with two different values (say, two store keys)."""
        if key in self._data():
            return self._data()[key]
        import fcntl

        from .keystore import Keystore

        lock_path = self._device.home.path / ".keystore.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ks = self._device.keystore
            on_disk = Keystore.open(ks.path, key=ks.key)
            slot = on_disk.data.setdefault(self.name, {})
            if key not in slot:
                slot[key] = make()
                on_disk.save()
            ks.data.setdefault(self.name, {})[key] = slot[key]
            return slot[key]
        finally:
            os.close(fd)  # releases the lock

    def __contains__(self, key: str) -> bool:
        return key in self._data()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))


class RouteClient:
    """Signed requests to the adapter's own service routes (``/v1/PREFIX/...``)."""

    def __init__(self, device: Device, prefixes: frozenset[str], server: str | None) -> None:
        self._device, self._prefixes, self._server = device, prefixes, server

    def request(
        self,
        method: str,
        *parts: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        from .client import path

        if not parts or parts[0] not in self._prefixes:
            raise Forbidden(f"route /{parts[0] if parts else ''} is not one of this adapter's")
        return self._device.client_for(self._server).request(
            method, path(*parts), body=body, params=params, timeout=timeout
        )


class AdapterCapabilities:
    """What one adapter may use on this device: exactly what it declared."""

    def __init__(
        self, device: Device, adapter: Adapter, adapters: Mapping[str, Adapter] | None = None
    ) -> None:
        self._device, self.adapter = device, adapter
        self._adapters = adapters
        self._channels = {c.name: c for c in channels_of(adapter)}

    # -- who am I (read-only facts, no keys)
    @property
    def account(self) -> str:
        return self._device.account

    @property
    def address(self) -> str:
        return self._device.address

    @property
    def device_name(self) -> str:
        return self._device.name

    @property
    def clock(self) -> Callable[[], float]:
        return self._device.clock

    def chain(self, *, refresh: bool = True) -> ChainState:
        """This account's verified chain."""
        return self._device.chain(refresh=refresh)

    def peer_chain(self, account: str, server: str | None = None) -> ChainState:
        """Another account's verified chain (pinned on first use)."""
        return self._device.peer_chain(account, server)

    # -- declared resources
    def collection(self, name: str) -> Collection:
        from .collections import Collection

        if name not in self.adapter.collections:
            raise Forbidden(f"adapter {self.adapter.name!r} did not declare collection {name!r}")
        return Collection(self._device, name)

    def channel(
        self, name: str, account: str | None = None, server: str | None = None
    ) -> ChannelClient:
        """Channel ``name`` of ``account`` (default: this one) at ``server`` (default: own)."""
        spec = self._channels.get(name)
        if spec is None:
            raise Forbidden(f"adapter {self.adapter.name!r} did not declare channel {name!r}")
        return ChannelClient(self._device, spec, account or self._device.account, server)

    def keystore_slot(self) -> KeystoreSlot:
        if not isinstance(self.adapter, DeclaresKeystoreSlot):
            raise Forbidden(f"adapter {self.adapter.name!r} declared no keystore slot")
        return KeystoreSlot(self._device, self.adapter.keystore_slot)

    def routes(self, server: str | None = None) -> RouteClient:
        """The adapter's own routes: ``/v1/NAME/...`` or ``/v1/COLLECTION/...``."""
        return RouteClient(
            self._device, frozenset({self.adapter.name, *self.adapter.collections}), server
        )

    # -- other adapters' services
    def service(self, kind: Callable[..., T]) -> T:
        """The installed provider of ``kind`` (a service Protocol such as :class:`Confirmer`);
        :class:`ServiceUnavailable` if none is."""
        adapters = self._adapters if self._adapters is not None else discover()
        wanted: type[Any] = kind  # type: ignore[assignment]  # a Protocol class is a type
        other = provider_of(wanted, adapters, wanted_by=self.adapter.name)
        factory = other.services()[wanted]
        return factory(AdapterCapabilities(self._device, other, adapters))  # type: ignore[no-any-return]


def provider_of(
    kind: type[Any], adapters: Mapping[str, Adapter] | None = None, *, wanted_by: str = ""
) -> _Provider:
    """The installed adapter that provides service ``kind`` (check at start-up, so a missing
    provider is one clear line before anything runs); :class:`ServiceUnavailable` if none."""
    for other in (adapters if adapters is not None else discover()).values():
        if isinstance(other, ProvidesServices) and kind in other.services():
            return other
    who = f" (adapter {wanted_by!r} needs it)" if wanted_by else ""
    raise ServiceUnavailable(
        f"no installed adapter provides {kind.__name__}{who}: install one that does, "
        "e.g. keystead's second_factor adapter"
    )


def capabilities_for(
    device: Device, adapter: str | Adapter, adapters: Mapping[str, Adapter] | None = None
) -> AdapterCapabilities:
    """The capabilities of installed adapter ``adapter`` (a name, or the object) on ``device``."""
    if isinstance(adapter, str):
        found = (adapters if adapters is not None else discover()).get(adapter)
        if found is None:
            raise NotFound(f"no adapter {adapter!r} is installed")
        adapter = found
    return AdapterCapabilities(device, adapter, adapters)


# ================================================================== service side
class RecordNamespace:
    """The adapter's records at the service under one declared namespace."""

    def __init__(self, ctx: ServiceContext, namespace: str) -> None:
        self._store, self.namespace = ctx.store, namespace

    def get(self, account: str, key: str) -> bytes | None:
        return self._store.record_get(account, self.namespace, key)

    def put(
        self, account: str, key: str, value: bytes, now: int, *, create_only: bool = False
    ) -> None:
        self._store.record_put(account, self.namespace, key, value, now, create_only=create_only)

    def list(self, account: str) -> list[tuple[str, bytes]]:
        return self._store.record_list(account, self.namespace)

    def delete(self, account: str, key: str) -> bool:
        return self._store.record_delete(account, self.namespace, key)


class ServiceChannel:
    """A declared channel as the service writes it (the ``SERVICE`` / ``RELYING_PARTY``
    posters: the adapter's route has authenticated the poster and names it in ``sender``)."""

    def __init__(self, ctx: ServiceContext, channel: Channel) -> None:
        self._store, self.channel = ctx.store, channel

    def put(
        self,
        account: str,
        sender: str,
        body: bytes,
        now: int,
        expires: int | None = None,
        *,
        nonce: RequestNonce | None = None,
    ) -> int:
        """``nonce``: the one ``ServiceCapabilities.signed`` handed the route, recorded in
        the same transaction."""
        return self._store.spool_put_many(
            self.channel.name, sender, [(account, body)], now, expires, nonce=nonce
        )[0]

    def put_many(
        self,
        sender: str,
        deliveries: list[tuple[str, bytes]],
        now: int,
        *,
        nonce: RequestNonce | None = None,
    ) -> list[int]:
        """One row per (account, body), all or nothing (a fan-out in one request)."""
        return self._store.spool_put_many(self.channel.name, sender, deliveries, now, nonce=nonce)

    def get(self, account: str, after: int, limit: int, now: int) -> list[ChannelMessage]:
        return [
            ChannelMessage(m.id, m.sender, m.body, m.created)
            for m in self._store.spool_get(account, self.channel.name, after, limit, now)
        ]

    def delete(self, account: str, message_id: int) -> bool:
        return self._store.spool_delete(account, self.channel.name, message_id)


class ServiceCapabilities:
    """What one adapter's service routes may use."""

    def __init__(self, ctx: ServiceContext, adapter: Adapter) -> None:
        self._ctx, self.adapter = ctx, adapter
        self._channels = {c.name: c for c in channels_of(adapter)}
        self._namespaces = namespaces_of(adapter)

    @property
    def config(self) -> ServiceConfig:
        """The service's configuration (limits and options, no secrets)."""
        return self._ctx.config

    def now(self) -> int:
        return self._ctx.now()

    async def authenticate(
        self,
        request: Request,
        *,
        account: str | None = None,
        scope: str | None = None,
        admin: bool = False,
    ) -> AuthDevice:
        """A live device's signed request (of ``account``, with ``scope``, admin)."""
        return await self._ctx.authenticate(request, account=account, scope=scope, admin=admin)

    async def signed(
        self,
        request: Request,
        then: Callable[[AuthDevice, RequestNonce | None], T],
        *,
        account: str | None = None,
        scope: str | None = None,
        admin: bool = False,
        nonce_in_then: bool = False,
    ) -> T:
        """:meth:`authenticate`, then ``then(device, nonce)`` in the same trip to the thread
        pool (blocking work: the channel, the records). With ``nonce_in_then``, ``then``
        must hand the nonce to one channel write (``put(..., nonce=nonce)``), which records
        it in its own transaction: one commit for the request instead of two."""
        _, result = await self._ctx.signed(
            request,
            then,
            account=account,
            scope=scope,
            admin=admin,
            nonce_in_then=nonce_in_then,
        )
        return cast(T, result)  # then ran: its result

    async def json_body(self, request: Request) -> dict[str, Any]:
        return await self._ctx.json_body(request)

    def account_grants(self, owner: str, key: str) -> list[tuple[str, int | None]]:
        """(account, expires) of ``owner``'s grants of ``key`` to accounts: who the owner let
        read it (read-only; the key must be named under one of the adapter's collections)."""
        if key.split("/", 1)[0] not in self.adapter.collections:
            raise Forbidden(f"adapter {self.adapter.name!r} may not read grants of {key!r}")
        return [
            (g.target, g.expires)
            for g in self._ctx.store.grants(owner, key)
            if g.target_kind == "account"
        ]

    async def wait_for(
        self,
        request: Request,
        topics: Iterable[str],
        wait: float,
        check: Callable[[], T],
        ready: Callable[[T], bool] = bool,
    ) -> T:
        """A long poll over the adapter's own channel or records (see
        ``ServiceContext.wait_for``): an awaited wake-up, never a polling loop."""
        for topic in topics:
            kind, _, rest = topic.partition(":")
            name = rest.split(":", 1)[1] if ":" in rest else ""
            if not (
                (kind == "spool" and name in self._channels)
                or (
                    kind == "record"
                    and any(name == ns or name.startswith(ns + ".") for ns in self._namespaces)
                )
            ):
                raise Forbidden(f"adapter {self.adapter.name!r} may not wait on {topic!r}")
        return await self._ctx.wait_for(request, topics, wait, check, ready)

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Blocking work (the records, the channel) in the service's thread pool, off the
        event loop."""
        return await self._ctx.run(fn, *args, **kw)

    def require_current_epoch(self, account: str, key: str, sealed: bytes) -> SealedKey:
        """Check that ``sealed`` (a sealed-key record someone hands this adapter's route for
        ``account``) is sealed to the current epoch of the adapter's ``key``: 409 otherwise,
        so a sender with a chain from before a removal seals again."""
        if key.split("/", 1)[0] not in self.adapter.collections:
            raise Forbidden(f"adapter {self.adapter.name!r} may not check keys of {key!r}")
        from .service.epochs import require_current_epoch

        return require_current_epoch(self._ctx.store, account, key, sealed)

    def records(self, namespace: str) -> RecordNamespace:
        if not any(namespace == ns or namespace.startswith(ns + ".") for ns in self._namespaces):
            raise Forbidden(
                f"adapter {self.adapter.name!r} did not declare namespace {namespace!r}"
            )
        return RecordNamespace(self._ctx, namespace)

    def channel(self, name: str) -> ServiceChannel:
        spec = self._channels.get(name)
        if spec is None:
            raise Forbidden(f"adapter {self.adapter.name!r} did not declare channel {name!r}")
        return ServiceChannel(self._ctx, spec)
