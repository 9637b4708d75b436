"""``keystead ssh agent --confirm``: every signature waits for an approval on the account's phone.

The hook describes the signature (user, host names from the synced known_hosts,
host key fingerprint, which key) and hands it to an *approver*: by default the
second-factor adapter's ``request_confirmation`` for this device's own account.
One approval answers one prompt for one signature; nothing is remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ._agent_core import ConfirmHook, SignContext

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


def phone_approver(open_device: Callable[[], object], wait: int = 60) -> Approver:
    """Approve through the second-factor adapter (``request_confirmation``)."""
    from keystead.adapters.second_factor import request_confirmation

    holder: list[object] = []

    def approve(message: str) -> bool:
        if not holder:
            holder.append(open_device())
        return bool(request_confirmation(holder[0], message, wait=wait))

    return approve
