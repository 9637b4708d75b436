"""Keystead passwords adapter: the vault, its import/export formats and browser autofill.

This module stays light (the CLI imports it to learn ``commands``); the vault,
the formats and the Public Suffix List load only when a command needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click

__all__ = ["adapter"]


class _Adapter:
    """The passwords application: one collection, one command group, no service routes."""

    name = "passwords"
    collections = ("passwords",)
    keystore_slot = "passwords"  # the lookup index key
    commands = ("passwords",)
    quick_commands = (("passwords", "get"),)  # the unlock agent answers these (see core.unlock)

    def cli_groups(self) -> Mapping[str, click.Command]:
        from .cli import passwords

        return {"passwords": passwords}

    def router(self, ctx: Any) -> None:
        return None

    def resolver(self, collection: str) -> Any:
        """How ``keystead sync`` merges a queued offline edit that met a newer version."""
        from ._vault import resolve

        return resolve if collection == "passwords" else None

    def services(self) -> Mapping[type[Any], Callable[[Any], Any]]:
        """Provides :class:`~keystead.core.capabilities.SshKeySource` (``keystead ssh import
        --from-vault``): the SSH-key items of the vault."""
        from keystead.core.capabilities import SshKeySource

        from ._ssh_keys import VaultSshKeys

        return {SshKeySource: VaultSshKeys}

    def synced(self, device: Any, collection: str) -> None:
        """After ``keystead sync``: bring the lookup index up to the new items now, so the
        next ``passwords get`` does not pay for it."""
        if collection != "passwords":
            return
        from ._vault import Vault

        vault = Vault(device)
        try:
            _ = vault.index
        finally:
            vault.close()


adapter = _Adapter()
