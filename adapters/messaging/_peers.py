"""Addresses, servers and verified chains of the accounts a device deals with.

An account is ``name@host[:port]``; its service is the same scheme as this
device's own at that host. Each chain is fetched and verified once per run
(one fetch per sender account, however many messages it sent).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from keystead.core import ChainState, Device

from ._envelope import Group, parse_address

__all__ = ["Peers"]


class Peers:
    """One device's view of other accounts during one command."""

    def __init__(self, device: Device) -> None:
        self.device = device
        split = urlsplit(device.server)
        self._scheme, self._host = split.scheme, split.netloc
        self._chains: dict[str, ChainState] = {}

    @property
    def me(self) -> str:
        return self.device.address

    def address(self, account: str) -> str:
        """The full address of ``name`` or ``name@host[:port]`` (default host: this service)."""
        name, host = parse_address(account)
        return f"{name}@{host or self._host}"

    def locate(self, address: str) -> tuple[str, str | None]:
        """(account name, service URL or None for this device's own service)."""
        name, host = parse_address(address)
        if host is None or host == self._host:
            return name, None
        return name, f"{self._scheme}://{host}"

    def chain(self, address: str) -> ChainState:
        """The verified chain of ``address`` (this account's own chain for itself)."""
        address = self.address(address)
        if address not in self._chains:
            name, server = self.locate(address)
            if name == self.device.account and server is None:
                self._chains[address] = self.device.chain(refresh=False)
            else:
                self._chains[address] = self.device.peer_chain(name, server)
        return self._chains[address]

    def group(self, ref: str) -> Group:
        """``NAME`` (a group of this account) or ``NAME@OWNER`` (OWNER an address)."""
        name, sep, owner = ref.partition("@")
        return Group(self.address(owner) if sep else self.me, name)
