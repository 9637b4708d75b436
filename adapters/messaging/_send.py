"""Sending: a direct message to one account, a group message to every member at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keystead.core import (
    ChainState,
    Conflict,
    Device,
    FormatError,
    NotFound,
    b64d,
    b64e,
    grant_account,
    random_bytes,
    revoke_account,
    seal_to_key,
)
from keystead.core.capabilities import AdapterCapabilities, capabilities_for

from . import _labels
from ._envelope import Group, body_ad, check_group_name, make_envelope, new_message_id, seal_body
from ._peers import Peers

__all__ = [
    "Sent",
    "add_member",
    "create_group",
    "group_members",
    "own_group",
    "publish_name",
    "remove_member",
    "send_direct",
    "send_group",
]


@dataclass(frozen=True)
class Sent:
    id: str
    recipients: tuple[str, ...]


SESSION_MESSAGES = 1000
SESSION_SECONDS = 24 * 3600


def _session_key(device: Device, address: str, chain: ChainState, now: int) -> tuple[bytes, bytes]:
    """The message key (and its capsule) for ``address``, reused for a while.

    Reused until the recipient's ``messages`` collection moves to a new epoch (which removing
    a device with that scope does), or after SESSION_MESSAGES messages or SESSION_SECONDS:
    the recipient's devices then open a whole inbox with one re-encryption per session
    instead of one per message, and whatever is sent after a device removal is under a
    capsule that device never had re-encrypted."""
    sessions: dict[str, dict[str, Any]] = device.keystore.data.setdefault(
        "messaging", {}
    ).setdefault("sessions", {})
    epoch = chain.collection(_labels.CHANNEL).current_epoch
    s = sessions.get(address)
    if (
        s is None
        or s["epoch"] != epoch
        or s["count"] >= SESSION_MESSAGES
        or not 0 <= now - s["since"] < SESSION_SECONDS
    ):
        key = random_bytes(32)
        s = {
            "epoch": epoch,
            "since": now,
            "count": 0,
            "key": b64e(key),
            "sealed": b64e(seal_to_key(chain, _labels.CHANNEL, key)),
        }
    s["count"] += 1
    sessions[address] = s
    device.save(durable=False)  # losing it only starts a new session
    return b64d(s["key"], size=32, what="session key"), b64d(s["sealed"], what="sealed key")


def send_direct(
    device: Device, to: str, text: str, *, peers: Peers | None = None, session: bool = True
) -> Sent:
    """Seal to ``to``'s ``messages`` key, sign, and post to its spool.

    With ``session`` (the default) the message key is reused per recipient for a while (see
    :func:`_session_key`); without, every message gets its own capsule."""
    peers = peers or Peers(device)
    address = peers.address(to)
    message_id, me = new_message_id(), peers.me
    name, server = peers.locate(address)
    for fresh in (False, True):
        chain = peers.chain(address, fresh=fresh)
        if _labels.CHANNEL not in chain.collections:
            raise NotFound(f"{address} cannot receive messages (no messages collection)")
        now = int(device.clock())
        if session:
            message_key, sealed = _session_key(device, address, chain, now)
        else:
            message_key = random_bytes(32)
            sealed = seal_to_key(chain, _labels.CHANNEL, message_key)
        body = seal_body(message_key, text, body_ad(message_id, me, device.device_id, now, None))
        wire = make_envelope(
            device.keys.signing,
            message_id=message_id,
            sender=me,
            device=device.device_id,
            to=address,
            time=now,
            group=None,
            sealed_key=sealed,
            body=body,
        )
        try:
            _caps(device).routes(server).request(
                "POST", "messaging", "direct", name, body={"body": b64e(wire)}
            )
            break
        except Conflict as e:
            # Sealed to an epoch that is no longer current (the recipient removed a device
            # since our copy of its chain): refresh the chain, which starts a new session.
            if fresh or "epoch" not in str(e):
                raise
    return Sent(message_id, (address,))


def group_members(device: Device, group: Group, peers: Peers) -> list[str]:
    """The member addresses, from the owner's service (owner or member devices)."""
    owner, server = peers.locate(group.owner)
    resp = (
        _caps(device)
        .routes(server)
        .request("GET", "messaging", "groups", owner, group.id, "members")
    )
    host = group.owner.partition("@")[2]
    return [f"{m}@{host}" for m in resp["members"]]


def send_group(device: Device, ref: str, text: str, *, peers: Peers | None = None) -> Sent:
    """Encrypt once to the group key; deliver a copy, signed for each member, in one request."""
    peers = peers or Peers(device)
    group = peers.group(ref)
    members = group_members(device, group, peers)
    _, server = peers.locate(group.owner)
    for fresh in (False, True):
        try:
            return _deliver_group(
                device, group, text, members, peers.chain(group.owner, fresh=fresh), peers, server
            )
        except Conflict as e:
            if fresh or "epoch" not in str(e):  # the group key moved on: seal to the new
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _deliver_group(
    device: Device,
    group: Group,
    text: str,
    members: list[str],
    chain: ChainState,
    peers: Peers,
    server: str | None,
) -> Sent:
    if group.key not in chain.collections:
        raise NotFound(f"no group {group}")
    message_key, message_id = random_bytes(32), new_message_id()
    now, me = int(device.clock()), peers.me
    body = seal_body(message_key, text, body_ad(message_id, me, device.device_id, now, group))
    sealed = seal_to_key(chain, group.key, message_key)
    deliveries = [
        {
            "account": peers.locate(m)[0],
            "body": b64e(
                make_envelope(
                    device.keys.signing,
                    message_id=message_id,
                    sender=me,
                    device=device.device_id,
                    to=m,
                    time=now,
                    group=group,
                    sealed_key=sealed,
                    body=body,
                )
            ),
        }
        for m in members
    ]
    routes = _caps(device).routes(server)
    for start in range(0, len(deliveries), 1000):
        routes.request(
            "POST", "messaging", "deliver", body={"deliveries": deliveries[start : start + 1000]}
        )
    return Sent(message_id, tuple(members))


def create_group(device: Device, name: str) -> Group:
    """A new group owned by this account (admin device); this account is its first member.

    The group key is created under an opaque id; the name goes only into the account's
    encrypted name record and, sealed to the group key, to the owner's service for members."""
    from keystead.core.names import name_collection, resolve_collection

    check_group_name(name)
    if resolve_collection(device, _labels.GROUP_PREFIX, name) is not None:
        raise FormatError(f"group {name!r} already exists")
    group = Group.of_key(device.address, name_collection(device, _labels.GROUP_PREFIX, name))
    publish_name(device, group, name)
    return group


def publish_name(device: Device, group: Group, name: str) -> None:
    """Store the group's name at the service, sealed to the group key's current epoch."""
    sealed = seal_to_key(device.chain(), group.key, name.encode())
    _caps(device).routes().request(
        "PUT", "messaging", "groups", group.id, "name", body={"name": b64e(sealed)}
    )


def own_group(device: Device, name: str) -> Group:
    """This account's group ``name`` (or its id); ``NotFound`` if there is none."""
    return Peers(device).group(name)


def _local_member(peers: Peers, account: str) -> str:
    name, server = peers.locate(peers.address(account))
    if server is not None:
        raise FormatError("group members must be accounts of this service")
    return name


def add_member(device: Device, name: str, account: str) -> str:
    """Grant ``account`` the group key: it reads and sends from now on."""
    peers = Peers(device)
    member = _local_member(peers, account)
    group = peers.group(name)
    grant_account(device, group.key, member)
    return peers.address(member)


def remove_member(device: Device, name: str, account: str) -> str:
    """Revoke ``account``'s grant: the service refuses it every later message."""
    peers = Peers(device)
    member = _local_member(peers, account)
    group = peers.group(name)
    revoke_account(device, group.key, member)
    # A new epoch: seal the name again, so members granted from now on can read it.
    publish_name(device, group, peers.group_names(peers.me).get(group.id, name))
    return peers.address(member)


def _caps(device: Device) -> AdapterCapabilities:
    """This adapter's capabilities on ``device`` (its channel and its own routes)."""
    from . import adapter

    return capabilities_for(device, adapter)
