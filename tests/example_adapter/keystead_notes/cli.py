"""``keystead notes``: add, list, send and read an inbox, through capabilities only."""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING

import click
from keystead.core.address import Address
from keystead.core.capabilities import AdapterCapabilities, capabilities_for
from keystead.core.cli import die, json_option, open_device, print_json
from keystead.core.text import printable

if TYPE_CHECKING:
    from keystead.core import Device


def _caps(dev: Device) -> AdapterCapabilities:
    from . import adapter

    return capabilities_for(dev, adapter)


@click.group("notes")
def notes() -> None:
    """Notes kept end to end encrypted, and notes other accounts drop for you."""


@notes.command("add")
@click.argument("text")
def add(text: str) -> None:
    """Add a note to this account's notes."""
    with open_device() as dev:
        _caps(dev).collection("notes").put(secrets.token_hex(8), text.encode())
    print("added", file=sys.stderr)


@notes.command("list")
@json_option
def list_(json_out: bool) -> None:
    """This account's notes (synced first)."""
    with open_device() as dev:
        coll = _caps(dev).collection("notes")
        coll.sync(refresh_chain=False)
        texts = sorted(r.plaintext.decode() for r in coll.records() if not r.deleted)
    if json_out:
        print_json(texts)
        return
    for t in texts:
        print(printable(t))


@notes.command("send")
@click.argument("account")
@click.argument("text")
def send(account: str, text: str) -> None:
    """Drop TEXT into ACCOUNT's notes inbox (an account of this service)."""
    with open_device() as dev:
        caps = _caps(dev)
        to = Address.parse(account, default=Address.parse(caps.address))
        if not to.same_service(dev.server):
            die(f"{to}: only accounts of this service")
        caps.channel("notes", to.name).post(text.encode())
    print(f"sent to {to}", file=sys.stderr)


@notes.command("inbox")
@json_option
def inbox(json_out: bool) -> None:
    """Notes other accounts dropped here; a row that is not text is skipped."""
    with open_device() as dev:
        rows = _caps(dev).channel("notes").read()
    out = []
    for m in rows:
        try:
            out.append({"from": m.sender.split("/", 1)[0], "text": m.body.decode()})
        except UnicodeDecodeError:
            continue
    if json_out:
        print_json(out)
        return
    for n in out:
        print(printable(f"{n['from']}: {n['text']}"))
