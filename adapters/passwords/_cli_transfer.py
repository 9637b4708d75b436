"""``keystead passwords import`` and ``export``: nothing is left out in silence.

An import refuses a file with a value the vault cannot keep (naming item and
field) unless ``--skip-unsupported``, and then lists every left-out value. An
export refuses a format that cannot hold some field unless ``--lossy``, and
then lists each dropped field per entry. Imports are rerunnable (see
``_importing``): the summary says how many entries were new and how many were
already in the vault.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["FORMAT_NAMES", "IMPORT_FORMATS", "export", "import_"]

FORMAT_NAMES = ("chrome", "firefox", "bitwarden-csv", "bitwarden-json", "keepassxc-csv")
IMPORT_FORMATS = (*FORMAT_NAMES, "kdbx", "lastpass-csv", "1pux")


def file_password(what: str) -> Callable[[], str]:
    """Reads a file's password when a format asks for one: stdin when it is not a terminal
    (one trailing newline off), else a prompt."""

    def read() -> str:
        if sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"Password of {what}: ")
        else:
            value = sys.stdin.read()
            value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
        return value

    return read


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), required=True)
@click.option(
    "--skip-unsupported",
    is_flag=True,
    help="Import what can be kept and list what was left out (default: refuse the file)",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="KeePass key file",
)
def import_(file: Path, fmt: str, skip_unsupported: bool, key_file: Path | None) -> None:
    """Import a product's export; rerunning it (or the same file) adds nothing twice."""
    from ._cli_vault import open_vault
    from ._importing import stable_ids
    from ._vault import now_ms
    from .formats import FileSecrets, Skips, import_entries

    skips = Skips(allow=skip_unsupported)
    secrets = FileSecrets(
        password=file_password(file.name),
        key_file=None if key_file is None else key_file.read_bytes(),
    )
    parsed = import_entries(fmt, file.read_bytes(), now=now_ms(), skips=skips, secrets=secrets)
    entries = stable_ids(parsed)
    with open_vault(online=True) as vault, _progress(len(entries)) as step:
        plan = vault.import_entries(entries, progress=step)
    for left in skips.left:
        print(f"  left out: item {left.item}: {left.field} ({left.problem})", file=sys.stderr)
    not_kept = f"; {len(skips.left)} values left out (listed above)" if skips.left else ""
    print(
        f"imported {len(plan.new)} new entries from {file.name} "
        f"({plan.present} already in the vault{not_kept})",
        file=sys.stderr,
    )


class _Bar:
    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None  # click's ProgressBar, on a terminal only

    def __enter__(self) -> Callable[[int], None]:
        if sys.stderr.isatty() and self.total > 1000:
            self.bar = click.progressbar(length=self.total, label="importing", file=sys.stderr)
            self.bar.__enter__()
        return self.step

    def step(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _progress(total: int) -> _Bar:
    return _Bar(total)


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), required=True)
@click.option(
    "--lossy",
    is_flag=True,
    help="Write what the format can hold and list what each entry lost (default: refuse)",
)
def export(file: Path, fmt: str, lossy: bool) -> None:
    """Write every entry as FILE (mode 0600) in a product's format."""
    from keystead.core import atomic_write

    from ._cli_vault import open_vault
    from .formats import export_entries

    with open_vault(online=True) as vault:
        entries = vault.entries()
    data, losses = export_entries(fmt, entries, lossy=lossy)
    atomic_write(file, data)
    skipped = 0
    for e, lost in losses:
        skipped += lost[0].startswith("type ")
        label = e.name or e.url or e.id
        print(f"  dropped from {label!r}: {', '.join(lost)}", file=sys.stderr)
    written = len(entries) - skipped
    tail = (
        f" ({len(losses)} entries lost fields, {skipped} of them not written; listed above)"
        if losses
        else ""
    )
    print(f"exported {written} entries to {file}{tail}", file=sys.stderr)
