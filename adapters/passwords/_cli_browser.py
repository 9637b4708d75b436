"""``keystead passwords browser``: the native messaging host and its manifests."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from keystead.core.cli import die

__all__ = ["browser"]


@click.group("browser")
def browser() -> None:
    """Autofill in Chromium, Chrome and Firefox through a native messaging host."""


_LAUNCHER = """#!/bin/sh
# Written by 'keystead passwords browser install': the browser runs this as its native host.
KEYSTEAD_HOME={home}
export KEYSTEAD_HOME
exec {python} -m keystead.core.cli passwords browser host
"""


@browser.command("install")
@click.option(
    "--browser",
    "browsers",
    multiple=True,
    type=click.Choice(["chromium", "chrome", "firefox"]),
    help="Per-user manifests for these browsers (default: all three)",
)
@click.option(
    "--user-data-dir",
    "data_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also a Chromium profile folder (--user-data-dir)",
)
@click.option(
    "--command",
    "command",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Executable the browser runs (default: a launcher written in KEYSTEAD_HOME)",
)
def browser_install(
    browsers: tuple[str, ...], data_dirs: tuple[Path, ...], command: Path | None
) -> None:
    """Write the native host manifests (and the launcher they point at)."""
    import shlex
    import stat

    from keystead.core.cli import home

    from ._native import extension_dir, install_host_manifests

    if command is None:
        h = home()
        if not h.exists:
            die(f"no device in {h.path}")
        command = h.path.resolve() / "passwords-native-host"
        command.write_text(
            _LAUNCHER.format(
                home=shlex.quote(str(h.path.resolve())), python=shlex.quote(sys.executable)
            )
        )
        command.chmod(stat.S_IRWXU)
    written = install_host_manifests(
        command.resolve(),
        browsers=browsers or ("chromium", "chrome", "firefox"),
        user_data_dirs=[d.resolve() for d in data_dirs],
    )
    for path in written:
        print(path)
    print(
        f"load the extension from {extension_dir()}; the host unlocks through a running "
        "'keystead unlock', else with KEYSTEAD_PASSPHRASE from the browser's environment",
        file=sys.stderr,
    )


@browser.command("host")
def browser_host() -> None:
    """The native messaging host (the browser starts it; it speaks on stdin/stdout)."""
    from ._cli_vault import open_vault
    from ._match import MatchKind
    from ._native import run_host

    with open_vault(online=True) as vault:

        def lookup(origin: str) -> list[tuple[str, str]]:
            found = vault.find(origin + "/", tiers=(MatchKind.EXACT, MatchKind.ORIGIN), best=False)
            return [(m.entry.username, m.entry.password) for m in found]

        code = run_host(sys.stdin.buffer, sys.stdout.buffer, lookup)
    raise SystemExit(code)
