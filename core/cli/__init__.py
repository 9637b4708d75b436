"""The ``keystead`` command line (Click).

Core commands live here; each adapter contributes command groups through the
adapter interface, imported only when one of its commands runs, so a quick
command (``keystead passwords get``, ``keystead ssh authorized-keys``) pays
for nothing else.
"""

from __future__ import annotations

import sys

import click

from ..errors import KeysteadError
from ._common import (
    die,
    get_passphrase,
    home,
    iso_time,
    json_option,
    open_device,
    print_json,
)

__all__ = [
    "cli",
    "die",
    "get_passphrase",
    "home",
    "iso_time",
    "json_option",
    "main",
    "open_device",
    "print_json",
]

_CORE = {
    "account": ("account_cmds", "account"),
    "device": ("account_cmds", "device"),
    "serve": ("account_cmds", "serve"),
    "sync": ("account_cmds", "sync"),
    "unlock": ("unlock_cmds", "unlock"),
    "lock": ("unlock_cmds", "lock"),
}


class _LazyGroup(click.Group):
    """Resolves core commands and adapters' groups on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from ..adapter import discover

        names = set(_CORE)
        for adapter in discover().values():
            names.update(adapter.commands)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _CORE:
            import importlib

            module, attr = _CORE[name]
            cmd: click.Command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
            return cmd
        from ..adapter import discover

        for adapter in discover().values():
            if name in adapter.commands:
                return adapter.cli_groups().get(name)
        return None


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Keystead: enroll a device once; SSH, passwords, second factor, documents and
    messages follow."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: a Keystead error is one line on stderr and exit status 1."""
    try:
        cli.main(args=argv, prog_name="keystead", standalone_mode=False)
    except click.exceptions.Exit as e:
        raise SystemExit(e.exit_code) from None
    except click.ClickException as e:
        e.show()
        raise SystemExit(e.exit_code) from None
    except click.Abort:
        die("aborted", 1)
    except KeysteadError as e:
        hint = getattr(e, "hint", None)
        die((str(e) or type(e).__name__) + (f"\n  hint: {hint}" if hint else ""))
    except KeyboardInterrupt:
        die("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(1) from None
