"""Keystead messaging adapter: direct and group messages, end to end.

A direct message is sealed to the recipient's ``messages`` collection key, so
each of the recipient's devices reads it through its own grant and a removed
device is refused at once. A group message is sealed once to a shared key of
the group's owner, whose members are account grants. Every message travels as
a versioned envelope signed by the sender's device; see ``docs/MESSAGING.md``.

This module stays light (the CLI imports it to learn ``commands``); the
protocol, the local store and the service route load only when used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from keystead.core.adapter import Channel, Poster

if TYPE_CHECKING:
    import click
    from fastapi import APIRouter
    from keystead.core.capabilities import ServiceCapabilities

__all__ = ["adapter"]


class _Adapter:
    """The messaging application: the ``messages`` collection, ``keystead msg``, one router."""

    name = "messaging"
    collections = ("messages",)
    commands = ("msg",)
    # Only the service posts, through the adapter's routes: /v1/messaging/direct/{account}
    # and /v1/messaging/deliver (a group message fanned out in one request) both check that
    # the message key is sealed to the current epoch before they store anything.
    channels = (Channel("messages", frozenset({Poster.SERVICE})),)
    keystore_slot = "messaging"
    namespaces = ("messaging",)  # messaging.groups: each group's name, sealed to its key

    def cli_groups(self) -> Mapping[str, click.Command]:
        from .cli import msg

        return {"msg": msg}

    def routes(self, caps: ServiceCapabilities) -> APIRouter | None:
        """``/v1/messaging``: group members and fan-out, over this adapter's capabilities."""
        from ._router import messaging_router

        return messaging_router(caps)


adapter = _Adapter()
