"""Addresses, services and verified chains of the accounts a device deals with.

An account is ``name@host[:port]`` (:class:`keystead.core.address.Address`); its
service is the same scheme as this device's own at that host. A service other
than this account's own is contacted only when the person allowed it
(``keystead msg peers allow HOST``): a message whose ``from`` names some host
must not make this device send requests there. Each chain is fetched and
verified once per run (one fetch per sender account, however many messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from keystead.core import ChainState, Device, Forbidden, FormatError, KeysteadError, NotFound, b64d
from keystead.core.address import Address
from keystead.core.capabilities import KeystoreSlot

from . import _labels
from ._envelope import Group, check_group_name

__all__ = ["PeerNotAllowed", "Peers", "allowed_peers", "check_peer", "set_allowed_peers"]

_GROUP_ID = re.compile(r"[0-9a-f]{32}")
SLOT = "messaging"  # the adapter's keystore slot (the allow-list is kept there, sealed)
_KEY = "peers"


class PeerNotAllowed(Forbidden):
    """A service other than this account's own that the person has not allowed."""


def check_peer(host: str) -> str:
    """``host[:port]`` as an address would name it (strict; one spelling)."""
    return Address.parse(f"x@{host}").netloc


def allowed_peers(device: Device) -> list[str]:
    peers = KeystoreSlot(device, SLOT).get(_KEY, [])
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise FormatError("the allowed peers in the keystore are malformed")
    return sorted(peers)


def set_allowed_peers(device: Device, hosts: Iterable[str]) -> None:
    KeystoreSlot(device, SLOT).set(_KEY, sorted({check_peer(h) for h in hosts}))


class Peers:
    """One device's view of other accounts during one command."""

    def __init__(self, device: Device, allowed: Iterable[str] | None = None) -> None:
        self.device = device
        self._own = Address.of_service(device.account, device.server)
        self._scheme = urlsplit(device.server).scheme
        self._allowed = set(allowed_peers(device) if allowed is None else allowed)
        self._chains: dict[str, ChainState] = {}
        self._group_names: dict[str, dict[str, str]] = {}

    @property
    def me(self) -> str:
        return str(self._own)

    def address(self, account: str) -> str:
        """The full address of ``name`` or ``name@host[:port]`` (default host: this service)."""
        return str(Address.parse(account, default=self._own))

    def locate(self, address: str) -> tuple[str, str | None]:
        """(account name, service URL or None for this device's own service).
        ``PeerNotAllowed`` for a service the person has not allowed."""
        a = Address.parse(address, default=self._own)
        if a.netloc == self._own.netloc:
            return a.name, None
        if a.netloc not in self._allowed:
            raise PeerNotAllowed(
                f"the service {a.netloc} is not allowed: "
                f"'keystead msg peers allow {a.netloc}' to talk to it"
            )
        return a.name, a.service_url(self._scheme)

    def chain(self, address: str, *, fresh: bool = False) -> ChainState:
        """The verified chain of ``address`` (this account's own chain for itself); with
        ``fresh``, fetched again even if this run has it already."""
        address = self.address(address)
        if fresh or address not in self._chains:
            name, server = self.locate(address)
            if name == self.device.account and server is None:
                self._chains[address] = self.device.chain(refresh=fresh)
            else:
                self._chains[address] = self.device.peer_chain(name, server)
        return self._chains[address]

    def group(self, ref: str) -> Group:
        """``NAME`` (a group of this account) or ``NAME@OWNER`` (OWNER an address); the
        group's 32-hex id works in place of NAME. ``NotFound`` if OWNER has no such group
        that this account may read."""
        name, sep, owner = ref.partition("@")
        owner = self.address(owner) if sep else self.me
        if _GROUP_ID.fullmatch(name):
            return Group(owner, name)  # an id: the owner's service says whether we are in it
        names = self.group_names(owner)
        check_group_name(name)
        found = [gid for gid, n in names.items() if n == name]
        if not found:
            raise NotFound(f"no group {name!r} of {owner} that this account belongs to")
        return Group(owner, found[0])

    def group_names(self, owner: str) -> dict[str, str]:
        """Group id -> name, for ``owner``'s groups this account may read: this account's
        own from its name record; another's from the owner's service, each name sealed to
        its group key and opened through this account's grant (the service holds ids)."""
        owner = self.address(owner)
        if owner in self._group_names:
            return self._group_names[owner]
        out: dict[str, str] = {}
        if owner == self.me:
            from keystead.core.names import is_opaque, read_names

            prefix = _labels.GROUP_PREFIX
            collections = self.device.chain(refresh=False).collections
            names = read_names(self.device)
            out = {
                cid[len(prefix) :]: names.name_of(cid) or cid[len(prefix) :]
                for cid in collections
                if is_opaque(cid, prefix)
            }
        else:
            out = self._remote_group_names(owner)
        self._group_names[owner] = out
        return out

    def _remote_group_names(self, owner: str) -> dict[str, str]:
        from keystead.core import open_sealed_to_key
        from keystead.core.capabilities import capabilities_for

        from . import adapter

        name, server = self.locate(owner)
        resp = (
            capabilities_for(self.device, adapter)
            .routes(server)
            .request("GET", "messaging", "groups", name)
        )
        chain = self.chain(owner)
        out: dict[str, str] = {}
        for g in resp.get("groups", []):
            try:
                group = Group(owner, g["id"])
                [raw] = open_sealed_to_key(
                    self.device,
                    chain,
                    group.key,
                    [b64d(g["name"], what="sealed group name")],
                    context="group name",
                    server=server,
                )
                out[group.id] = check_group_name(raw.decode())
            except (KeysteadError, KeyError, TypeError, UnicodeDecodeError):
                continue  # a name this account cannot open (or a malformed one): skipped
        return out

    def group_label(self, group: Group) -> str:
        """``NAME@OWNER`` for display; the id in place of a name this account cannot read."""
        try:
            name = self.group_names(group.owner).get(group.id)
        except KeysteadError:
            name = None
        return f"{name or group.id}@{group.owner}"
