"""``keystead ssh known-hosts``: host keys synced across the account's devices.

``command`` runs for ssh on every connection: it unlocks nothing and reads only
the plain export the other commands and the agent keep up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from keystead.core.cli import die, json_option, open_device, print_json

__all__ = ["known_hosts"]


# ------------------------------------------------------------------ known hosts
@click.group("known-hosts")
def known_hosts() -> None:
    """Host keys synced across this account's devices (for ssh's KnownHostsCommand)."""


@known_hosts.command("add")
@click.argument("host")
@click.argument("key", nargs=-1, required=True)
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--marker", type=click.Choice(["revoked", "cert-authority"]), default=None)
def known_hosts_add(host: str, key: tuple[str, ...], port: int, marker: str | None) -> None:
    """Trust KEY ('ssh-ed25519 AAAA...', or '-' to read lines from stdin) for HOST."""
    from ._keys import PublicKey
    from ._known_hosts import host_lookup_name, known_hosts_line, parse_known_hosts

    lines = sys.stdin.read().splitlines() if key == ("-",) else [" ".join(key)]
    name = host_lookup_name(host, port)
    entries = []
    for text in lines:
        if text.strip():
            pub = PublicKey.from_line(text)
            line = known_hosts_line([name], pub, marker=f"@{marker}" if marker else None)
            entries += parse_known_hosts(line)
    if not entries:
        die("no key given")
    _store_hosts(entries)
    print(f"added {len(entries)} key(s) for {name}")


def _store_hosts(entries: list) -> int:  # type: ignore[type-arg]
    from ._device import SshItems
    from ._items import encode_host, host_item_id

    with open_device() as dev:
        items = SshItems(dev)
        items.sync()
        have = {i for i, _ in items.known_hosts()}
        new = {host_item_id(e.line): encode_host(e) for e in entries}
        todo = [(i, p) for i, p in new.items() if i not in have]
        if todo:
            items.collection.put_many(todo)
        items.export_known_hosts()
    return len(todo)


@known_hosts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
def known_hosts_import(file: Path | None) -> None:
    """Import an OpenSSH known_hosts file (default ~/.ssh/known_hosts)."""
    from ._known_hosts import parse_known_hosts

    path = file or Path.home() / ".ssh" / "known_hosts"
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError as e:
        die(f"cannot read {path}: {e.strerror}")
    entries = parse_known_hosts(text, skip_invalid=True)
    added = _store_hosts(entries) if entries else 0
    print(f"imported {added} new line(s) of {len(entries)} from {path}")


@known_hosts.command("list")
@json_option
def known_hosts_list(json_out: bool) -> None:
    """The synced known_hosts lines."""
    from keystead.core import NetworkError

    from ._device import SshItems

    with open_device(refresh_chain=False) as dev:
        items = SshItems(dev)
        try:
            items.sync()
        except NetworkError:
            print("keystead: the service is unreachable; listing the local cache", file=sys.stderr)
        hosts = sorted(items.known_hosts(), key=lambda h: h[1].line)
        items.export_known_hosts()
    if json_out:
        print_json([{"id": i, "line": e.line} for i, e in hosts])
        return
    for _, e in hosts:
        print(e.line)


@known_hosts.command("rm")
@click.argument("host")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True)
def known_hosts_rm(host: str, port: int) -> None:
    """Forget every synced line that applies to HOST (on every device)."""
    from ._device import SshItems
    from ._known_hosts import host_lookup_name

    name = host_lookup_name(host, port)
    with open_device() as dev:
        items = SshItems(dev)
        items.sync()
        gone = [i for i, e in items.known_hosts() if e.matches(name)]
        for i in gone:
            items.collection.delete(i)
        items.export_known_hosts()
    if not gone:
        die(f"no synced known_hosts line for {name}")
    print(f"removed {len(gone)} line(s) for {name}")


@known_hosts.command("sync")
def known_hosts_sync() -> None:
    """Fetch the synced host keys now and refresh the file 'command' reads."""
    from ._device import SshItems

    with open_device() as dev:
        items = SshItems(dev)
        items.sync()
        items.export_known_hosts()
        count = len(items.known_hosts())
    print(f"{count} known_hosts line(s)")


@known_hosts.command("command", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("rest", nargs=-1, type=click.UNPROCESSED)
def known_hosts_command(host: str, rest: tuple[str, ...]) -> None:
    """For ssh's 'KnownHostsCommand keystead ssh known-hosts command %H': offline, no unlock.

    Reads the plain export each device keeps up to date (its agent, 'sync', 'list');
    extra arguments (%K, %t...) are accepted and ignored: ssh judges the key itself."""
    from keystead.core.cli import home

    from ._known_hosts import known_hosts_command_output, parse_known_hosts

    path = home().path / "ssh" / "known_hosts"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return
    sys.stdout.write(known_hosts_command_output(parse_known_hosts(text, skip_invalid=True), host))
