"""``keystead msg``: send, read and delete messages; create and run groups.

Text comes from the argument or stdin. The inbox shows each sender as verified
against their account chain, or the message as refused with the reason and
never its text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from keystead.core.cli import die, iso_time, json_option, open_device, print_json
from keystead.core.text import printable

if TYPE_CHECKING:
    from keystead.core import Device

    from ._store import Message, MessageStore

__all__ = ["msg"]


@click.group("msg")
def msg() -> None:
    """Direct and group messages, end to end encrypted and signed by the sending device."""


def _text(text: str | None) -> str:
    if text is None:
        if sys.stdin.isatty():
            die("give the message as an argument or on stdin")
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
    if not text:
        die("empty message refused")
    return text


@contextmanager
def _store() -> Iterator[tuple[Device, MessageStore]]:
    from ._store import MessageStore

    with open_device() as dev:
        store = MessageStore(dev)
        try:
            yield dev, store
        finally:
            store.close()


def _line(m: Message) -> str:
    """One inbox line. Everything in it that a sender or a service wrote goes through
    ``printable``: no newline, carriage return or ANSI escape can fake a second line."""
    where = f" [{printable(m.group, 200)}]" if m.group else ""
    if not m.verified:
        who = printable(m.sender or "unknown sender", 200)
        return (
            f"{m.local}  {iso_time(m.received)}  REFUSED ({printable(m.reason, 300)}); "
            f"claims to be from {who}"
        )
    return (
        f"{m.local}  {iso_time(m.time)}  {printable(m.sender, 200)} (verified){where}: "
        f"{printable(m.text, 2000)}"
    )


@msg.command("send")
@click.argument("account")
@click.argument("text", required=False)
def send(account: str, text: str | None) -> None:
    """Send TEXT (or stdin) to ACCOUNT (name or name@host[:port])."""
    from ._send import send_direct

    body = _text(text)
    with open_device() as dev:
        sent = send_direct(dev, account, body)
    print(f"sent {sent.id} to {sent.recipients[0]}", file=sys.stderr)


@msg.command("inbox")
@json_option
@click.option(
    "--wait",
    type=click.IntRange(0, 60),
    default=0,
    help="Seconds to wait for a new message when none is waiting",
)
def inbox(json_out: bool, wait: int) -> None:
    """Fetch new messages and list every message kept on this device, newest last."""
    from ._inbox import fetch_new

    with _store() as (dev, store):
        fetch_new(dev, store, wait=wait)
        messages = list(store.all())
    if json_out:
        print_json([m.to_json() for m in messages])
        return
    for m in messages:
        print(_line(m))
    if not messages:
        print("no messages", file=sys.stderr)


def _local_id(text: str) -> int:
    if not text.isdigit():
        die(f"no message {text!r} (use the id 'keystead msg inbox' shows)")
    return int(text)


@msg.command("read")
@click.argument("message_id")
@json_option
def read(message_id: str, json_out: bool) -> None:
    """Show one message in full."""
    with _store() as (_, store):
        m = store.get(_local_id(message_id))
    if m is None:
        die(f"no message {message_id}")
    if json_out:
        print_json(m.to_json())
        return
    print(f"id:       {m.local}")
    print(
        f"from:     {printable(m.sender or 'unknown', 200)}"
        + (" (verified)" if m.verified else f" (REFUSED: {printable(m.reason, 300)})")
    )
    if m.group:
        print(f"group:    {printable(m.group, 200)}")
    print(f"time:     {iso_time(m.time)}")
    if m.verified:
        print()
        print(printable(m.text, 256 * 1024, newlines=True))


@msg.command("rm")
@click.argument("message_id")
def rm(message_id: str) -> None:
    """Delete a message here and its spool entry at the service."""
    from keystead.core import NotFound

    from . import _labels
    from ._send import _caps

    with _store() as (dev, store):
        m = store.get(_local_id(message_id))
        if m is None:
            die(f"no message {message_id}")
        try:
            _caps(dev).channel(_labels.CHANNEL).delete(m.spool)
        except NotFound:
            pass  # another device of this account deleted it already
        store.remove(m.local)
    print(f"deleted message {m.local}", file=sys.stderr)


@msg.group("group")
def group() -> None:
    """Groups: a key of this account; members are grants to their accounts."""


@group.command("create")
@click.argument("name")
def group_create(name: str) -> None:
    """Create group NAME (admin device); this account is its first member."""
    from ._send import create_group

    with open_device() as dev:
        g = create_group(dev, name)
    print(f"created group {name}@{g.owner}", file=sys.stderr)


@group.command("add")
@click.argument("name")
@click.argument("account")
def group_add(name: str, account: str) -> None:
    """Add ACCOUNT to group NAME (admin device)."""
    from ._send import add_member

    with open_device() as dev:
        who = add_member(dev, name, account)
    print(f"added {who} to {name}", file=sys.stderr)


@group.command("remove")
@click.argument("name")
@click.argument("account")
def group_remove(name: str, account: str) -> None:
    """Remove ACCOUNT from group NAME: it cannot open any later message."""
    from ._send import remove_member

    with open_device() as dev:
        who = remove_member(dev, name, account)
    print(f"removed {who} from {name}", file=sys.stderr)


@group.command("list")
@json_option
def group_list(json_out: bool) -> None:
    """Groups this account owns, with their members."""
    from keystead.core import Forbidden

    from ._envelope import Group
    from ._peers import Peers
    from ._send import group_members

    rows = []
    with open_device() as dev:
        peers = Peers(dev)
        for group_id, name in sorted(peers.group_names(peers.me).items(), key=lambda x: x[1]):
            g = Group(dev.address, group_id)
            try:
                members: list[str] | None = group_members(dev, g, peers)
            except Forbidden:
                members = None
            rows.append(
                {
                    "group": f"{name}@{g.owner}",
                    "name": name,
                    "id": g.id,
                    "owner": g.owner,
                    "members": members,
                }
            )
    if json_out:
        print_json(rows)
        return
    for r in rows:
        print(printable(f"{r['name']}: {', '.join(r['members'] or [])}", 2000))
    if not rows:
        print("no groups", file=sys.stderr)


@group.command("send")
@click.argument("name")
@click.argument("text", required=False)
def group_send(name: str, text: str | None) -> None:
    """Send TEXT (or stdin) to group NAME (or NAME@OWNER for another account's group)."""
    from ._send import send_group

    body = _text(text)
    with open_device() as dev:
        sent = send_group(dev, name, body)
    print(f"sent {sent.id} to {len(sent.recipients)} members of {name}", file=sys.stderr)


@msg.group("peers")
def peers() -> None:
    """Other services this device may contact for senders and recipients (an allow-list)."""


@peers.command("allow")
@click.argument("host")
def peers_allow(host: str) -> None:
    """Allow the service at HOST[:PORT] (accounts name@HOST[:PORT])."""
    from ._peers import allowed_peers, check_peer, set_allowed_peers

    netloc = check_peer(host)
    with open_device(refresh_chain=False) as dev:
        set_allowed_peers(dev, [*allowed_peers(dev), netloc])
    print(f"allowed {netloc}", file=sys.stderr)


@peers.command("deny")
@click.argument("host")
def peers_deny(host: str) -> None:
    """Stop contacting the service at HOST[:PORT]."""
    from ._peers import allowed_peers, check_peer, set_allowed_peers

    netloc = check_peer(host)
    with open_device(refresh_chain=False) as dev:
        now = allowed_peers(dev)
        if netloc not in now:
            die(f"{netloc} is not allowed")
        set_allowed_peers(dev, [h for h in now if h != netloc])
    print(f"denied {netloc}", file=sys.stderr)


@peers.command("list")
@json_option
def peers_list(json_out: bool) -> None:
    """The allowed services (this account's own service is always allowed)."""
    from ._peers import allowed_peers

    with open_device(refresh_chain=False) as dev:
        hosts = allowed_peers(dev)
    if json_out:
        print_json(hosts)
        return
    for h in hosts:
        print(h)
    if not hosts:
        print("no other services allowed", file=sys.stderr)
