"""Keystead ssh adapter: the device's key in an ssh-agent, sshd's authorized keys, known hosts.

This module stays light (the CLI imports it to learn ``commands``, and sshd runs
``keystead ssh authorized-keys`` on every login): the agent, keys and routes load
only when a command or the service needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from keystead.core.service import ServiceContext

__all__ = ["adapter"]


class _Adapter:
    """SSH: one collection (imported keys, known hosts), one command group, one route."""

    name = "ssh"
    collections = ("ssh",)
    commands = ("ssh",)
    namespaces = ("ssh",)  # the account's published authorized keys (ssh._service)

    def cli_groups(self) -> Mapping[str, click.Command]:
        from .cli import ssh

        return {"ssh": ssh}

    def router(self, ctx: ServiceContext) -> APIRouter | None:
        from ._service import ssh_router

        return ssh_router(ctx)

    def after_account_key_rotation(self, device: Any) -> str | None:
        """Publish the imported keys again under the new account key (sshd's
        authorized-keys lists only what the current key signed)."""
        from ._device import SshItems
        from ._publish import publish_imported

        items = SshItems(device)
        items.sync()
        if not items.imported_keys():
            return None
        published = publish_imported(device, items)
        return f"published {len(published.keys)} imported ssh key(s) under the new account key"


adapter = _Adapter()
