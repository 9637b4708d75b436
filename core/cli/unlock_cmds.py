"""``keystead unlock`` and ``keystead lock``: the per-home unlock agent."""

from __future__ import annotations

import re

import click

from ..errors import FormatError
from ..keystore import Keystore
from ..unlock import lock as stop_agent
from ..unlock import spawn
from ._common import get_passphrase, home

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``8h``, ``1d`` (a bare number is seconds)."""
    m = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not m or int(m.group(1)) == 0:
        raise FormatError(f"not a duration: {text!r} (use e.g. 90s, 15m, 8h)")
    return int(m.group(1)) * _UNITS[m.group(2) or "s"]


@click.command("unlock")
@click.option(
    "--for",
    "duration",
    default="15m",
    show_default=True,
    help="How long to stay unlocked (e.g. 90s, 15m, 8h)",
)
def unlock(duration: str) -> None:
    """Keep this device unlocked for a while, so commands need no passphrase."""
    seconds = parse_duration(duration)
    h = home()
    store = Keystore.open(h.keystore, get_passphrase())
    spawn(h.path, store.key, seconds)
    click.echo(f"unlocked for {duration}; 'keystead lock' locks again", err=True)


@click.command("lock")
def lock() -> None:
    """Forget the unlocked key now."""
    if stop_agent(home().path):
        click.echo("locked", err=True)
    else:
        click.echo("was not unlocked", err=True)
