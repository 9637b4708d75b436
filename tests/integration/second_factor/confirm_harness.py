"""Helpers for the confirmation tests: one account per module, a relying party on the real CLI,
and devices opened in-process (the Python API) on the same homes the CLI uses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keystead.core import Device
from keystead.core import Home as CoreHome

CLI = [sys.executable, "-m", "keystead.core.cli"]


@dataclass
class World:
    account: Any  # conftest's Account: .name, .admin, .join()
    phone: Any  # a member device with the confirm scope (conftest's Home)
    token: str  # an RP token for bank.example
    url: str
    rp_home: Path  # the relying party's state folder (its pins), KEYSTEAD_HOME when it runs


def make_world(make_account: Any, service: Any) -> World:
    acct = make_account("confirm")
    phone = acct.join("phone", scopes=["confirm", "totp"])
    token = acct.admin.run("confirm", "allow", "bank.example").stdout.split("rp token: ")[1]
    return World(acct, phone, token.strip(), service.url, acct.tmp / f"{acct.name}-rp")


def rp_request(
    world: World, *args: str, token: str | None = None, message: str = "Log in to bank.example?"
) -> subprocess.Popen[str]:
    """``keystead confirm request`` as a relying party runs it: no device, only a state folder
    for its pins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    env["KEYSTEAD_HOME"] = str(world.rp_home)  # where it keeps its pins
    return subprocess.Popen(
        [
            *CLI,
            "confirm",
            "request",
            world.account.name,
            "--server",
            world.url,
            "--rp-token",
            token or world.token,
            "--message",
            message,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_prompt(home: Any, message: str, timeout: float = 20) -> dict[str, Any]:
    """Poll ``keystead confirm list --json`` on a device until ``message`` shows up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in home.json("confirm", "list", "--json"):
            if p["message"] == message:
                return p
        time.sleep(0.2)
    raise AssertionError(f"no prompt {message!r} reached the device")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@contextmanager
def opened(home: Any) -> Any:
    """The device of a test home, unlocked in this process."""
    dev = Device.open(CoreHome(home.path), home.passphrase)
    try:
        yield dev
    finally:
        dev.close()
