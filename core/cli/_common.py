"""What every CLI command shares: finding the home, unlocking the device, printing errors.

Adapters' command groups use these too (``keystead.core.cli.open_device``), so
every command unlocks, reports and fails the same way.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from ..device import Device
from ..errors import KeystoreLocked
from ..home import Home
from ..keystore import Keystore
from ..unlock import fetch_key

__all__ = ["die", "get_passphrase", "home", "iso_time", "json_option", "open_device", "print_json"]


json_option = click.option("--json", "json_out", is_flag=True, help="Print JSON")
"""The ``--json`` flag every listing command takes (as ``json_out``)."""


def home() -> Home:
    return Home.from_env()


def get_passphrase(*, confirm: bool = False) -> str:
    """``KEYSTEAD_PASSPHRASE``, else a prompt on the terminal; never a silent default.

    (Commands that open the device try the unlock agent first: see ``keystead unlock``.)"""
    env = os.environ.get("KEYSTEAD_PASSPHRASE")
    if env is not None:
        if not env:
            raise KeystoreLocked("KEYSTEAD_PASSPHRASE is set but empty")
        return env
    if not sys.stdin.isatty():
        raise KeystoreLocked("the keystore is locked: set KEYSTEAD_PASSPHRASE or run on a terminal")
    import getpass

    first = getpass.getpass("Keystead passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise KeystoreLocked("the passphrases did not match")
    return first


@contextmanager
def open_device(*, refresh_chain: bool = True) -> Iterator[Device]:
    """Unlock this home's device; with ``refresh_chain``, verify the newest chain and
    check that this device is still live (a removed device fails here, with one line)."""
    h = home()
    key = fetch_key(h.path) if h.exists else None
    store = None
    if key is not None:
        try:
            store = Keystore.open(h.keystore, key=key)
        except KeystoreLocked:
            store = None  # a stale agent for a replaced keystore: ask for the passphrase
    device = Device(h, store) if store is not None else Device.open(h, get_passphrase())
    try:
        if refresh_chain:
            device.me(device.chain())
        yield device
    finally:
        device.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def iso_time(ts: int | None) -> str:
    """A Unix time as ``2026-11-27T10:48:52Z`` (UTC), or ``-`` for none."""
    if ts is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def die(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit ``code``. The message often quotes a service or another
    party (an error text, a name): no control character or newline of theirs gets through."""
    from ..text import printable

    sys.stderr.write(f"keystead: {printable(message, 1000)}\n")
    raise SystemExit(code)
