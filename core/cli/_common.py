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

from ..device import Device
from ..errors import KeystoreLocked
from ..home import Home

__all__ = ["die", "get_passphrase", "home", "open_device", "print_json"]


def home() -> Home:
    return Home.from_env()


def get_passphrase(*, confirm: bool = False) -> str:
    """``KEYSTEAD_PASSPHRASE``, else a prompt on the terminal; never a silent default."""
    env = os.environ.get("KEYSTEAD_PASSPHRASE")
    if env is not None:
        if not env:
            raise KeystoreLocked("KEYSTEAD_PASSPHRASE is set but empty")
        return env
    if not sys.stdin.isatty():
        raise KeystoreLocked(
            "the keystore is locked: set KEYSTEAD_PASSPHRASE or run on a terminal")
    import getpass

    first = getpass.getpass("Keystead passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise KeystoreLocked("the passphrases did not match")
    return first


@contextmanager
def open_device(*, refresh_chain: bool = True) -> Iterator[Device]:
    """Unlock this home's device; with ``refresh_chain``, verify the newest chain and
    check that this device is still live (a removed device fails here, with one line)."""
    device = Device.open(home(), get_passphrase())
    try:
        if refresh_chain:
            device.me(device.chain())
        yield device
    finally:
        device.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def die(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"keystead: {message}\n")
    raise SystemExit(code)
