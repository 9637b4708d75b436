"""The ``keystead`` command line.

Core commands live here; each adapter contributes command groups through the
adapter interface, loaded only when one of its commands is run, so that a
quick command does not pay for importing every adapter.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

from ..errors import KeysteadError
from ._common import die, get_passphrase, home, open_device, print_json
from .account_cmds import account_app, device_app, serve, sync

__all__ = ["app", "die", "get_passphrase", "home", "main", "open_device", "print_json"]


class _LazyGroup(TyperGroup):
    """Adds adapters' groups on demand (``keystead ssh ...`` imports only the SSH adapter)."""

    def _adapters(self) -> dict[str, Any]:
        from ..adapter import discover

        return discover()

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for adapter in self._adapters().values():
            names.update(getattr(adapter, "commands", ()))
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        for adapter in self._adapters().values():
            if name in getattr(adapter, "commands", ()):
                group = adapter.cli_groups().get(name)
                if group is not None:
                    return typer.main.get_command(group)
        return None


app = typer.Typer(
    cls=_LazyGroup, no_args_is_help=True, pretty_exceptions_enable=False,
    add_completion=False,
    help="Keystead: enroll a device once; SSH, passwords, second factor, documents and "
         "messages follow.",
)
app.add_typer(account_app, name="account")
app.add_typer(device_app, name="device")
app.command("serve")(serve)
app.command("sync")(sync)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: a Keystead error is one line on stderr and exit status 1."""
    try:
        app(args=argv, prog_name="keystead")
    except KeysteadError as e:
        die(str(e) or type(e).__name__)
    except KeyboardInterrupt:
        die("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(1) from None
