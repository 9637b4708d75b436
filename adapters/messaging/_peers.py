"""Addresses, services and verified chains of the accounts a device deals with.

An account is ``name@host[:port]`` (:class:`keystead.core.address.Address`); its
service is the same scheme as this device's own at that host. A service other
than this account's own is contacted only when the person allowed it
(``keystead msg peers allow HOST``): a message whose ``from`` names some host
must not make this device send requests there. Each chain is fetched and
verified once per run (one fetch per sender account, however many messages).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from keystead.core import ChainState, Device, Forbidden, FormatError
from keystead.core.address import Address
from keystead.core.capabilities import KeystoreSlot

from ._envelope import Group

__all__ = ["PeerNotAllowed", "Peers", "allowed_peers", "check_peer", "set_allowed_peers"]

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
        """``NAME`` (a group of this account) or ``NAME@OWNER`` (OWNER an address)."""
        name, sep, owner = ref.partition("@")
        return Group(self.address(owner) if sep else self.me, name)
