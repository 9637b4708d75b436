"""``keystead ssh agent --confirm``: every signature waits for an approval on the account's phone.

The hook describes the signature (user, host names from the synced known_hosts,
host key fingerprint, which key) and hands it to an *approver*: by default the
:class:`keystead.core.capabilities.Confirmer` service for this device's own account,
which an installed adapter provides (keystead's second_factor); ssh never imports it.
Number matching is on: the agent prints the number to pick on its terminal.
One approval answers one prompt for one signature; nothing is remembered.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._agent_core import ConfirmHook, SignContext

if TYPE_CHECKING:
    from keystead.core import Device

__all__ = ["Approver", "confirm_hook", "describe"]

Approver = Callable[[str], bool]
"""Given the text to show, True only for a verified approval."""


def describe(ctx: SignContext, host_names: Callable[[bytes], list[str]]) -> str:
    """One line for the phone: what is being signed, for whom and where."""
    if ctx.host_key is not None:
        names = host_names(ctx.host_key.blob)
        host = (
            f"{', '.join(names)} ({ctx.host_key.fingerprint})"
            if names
            else f"host key {ctx.host_key.fingerprint}"
        )
    else:
        host = "an unverified host"
    key = ctx.key.comment or ctx.key.fingerprint
    if ctx.user is not None:
        what = f"ssh login as {ctx.user!r} to {host}"
    elif ctx.namespace is not None:
        what = f"ssh signature for {ctx.namespace!r}"
    else:
        what = f"ssh signature for {host}"
    forwarded = " through a forwarded agent" if ctx.forwarded else ""
    return f"{what}{forwarded} with {key}"


def confirm_hook(approve: Approver, host_names: Callable[[bytes], list[str]]) -> ConfirmHook:
    """A hook asking ``approve`` once per signature, one prompt at a time."""
    lock = threading.Lock()

    def hook(ctx: SignContext) -> bool:
        message = describe(ctx, host_names)
        with lock:
            return approve(message) is True

    return hook


def phone_approver(
    open_device: Callable[[], Device],
    wait: int = 60,
    *,
    show_number: Callable[[int], None] | None = None,
) -> Approver:
    """Approve through whichever installed adapter provides a ``Confirmer``; without one,
    the first signature fails with one line saying so (``ServiceUnavailable``)."""
    from keystead.core.capabilities import Confirmer, capabilities_for, provider_of

    from . import adapter

    provider_of(Confirmer, wanted_by=adapter.name)  # no provider: one line now, not per login
    holder: list[Confirmer] = []

    def approve(message: str) -> bool:
        if not holder:
            holder.append(capabilities_for(open_device(), adapter).service(Confirmer))
        return holder[0].confirm(
            message, wait=wait, number_matching=True, show_number=show_number or _print_number
        )

    return approve


def _print_number(number: int) -> None:
    print(
        f"keystead ssh agent: pick {number} on your device to approve", file=sys.stderr, flush=True
    )
