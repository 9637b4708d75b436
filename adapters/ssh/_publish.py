"""Publish the imported keys' public halves (admin devices): sign, then store at the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keystead.core import Conflict, Forbidden, InvalidSignature, NotFound, UnsupportedVersion
from keystead.core.client import path

from ._device import SshItems
from ._published import PublishedKeys, published_seq, sign_published, verify_published

if TYPE_CHECKING:
    from keystead.core import Device
    from keystead.core.keys import AccountSecrets

__all__ = ["current_published", "publish_imported", "require_admin_secrets"]


def current_published(device: Device) -> PublishedKeys | None:
    """The published list, verified with the current account key; None if there is none,
    it was signed by an older key (an admin removal rotated it) or it is of format 1: publish
    again."""
    state = device.chain(refresh=False)
    try:
        raw = device.client.get(path("ssh", device.account, "published-keys"), signed=False)
    except NotFound:
        return None
    try:
        return verify_published(
            state.signing_key, state.key_generation, raw, account=device.account
        )
    except (InvalidSignature, UnsupportedVersion):
        return None


def _published_seq(device: Device) -> int:
    try:
        raw = device.client.get(path("ssh", device.account, "published-keys"), signed=False)
    except NotFound:
        return 0
    return published_seq(raw)


def require_admin_secrets(device: Device) -> AccountSecrets:
    secrets = device.secrets
    if secrets is None or device.me().role != "admin":
        raise Forbidden(
            "only an admin device can change imported ssh keys: their public "
            "keys are published signed by the account key"
        )
    return secrets


def publish_imported(device: Device, items: SshItems) -> PublishedKeys:
    """Sign the list of every imported key's public half with a higher ``seq``; store it.
    The ``seq`` continues from whatever is stored, even a list of format 1 or one signed by
    an older account key, so readers that verified those see it count up."""
    secrets = require_admin_secrets(device)
    keys = [k.key.public for k in items.served_keys()]
    for _ in range(3):
        new = sign_published(
            secrets.account_key,
            secrets.key_generation,
            device.account,
            _published_seq(device) + 1,
            int(device.clock()),
            keys,
        )
        try:
            device.client.put(path("ssh", device.account, "published-keys"), new.to_json())
            return new
        except Conflict:
            continue  # another admin published meanwhile: sign again on top of theirs
    raise Conflict("could not publish the imported ssh keys: other admins keep publishing")
