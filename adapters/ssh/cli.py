"""``keystead ssh``: the agent, sshd's AuthorizedKeysCommand, imported keys, synced known hosts.

``authorized-keys`` and ``known-hosts command`` run for sshd and ssh on every
connection: they unlock nothing and import only what they use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from keystead.core.cli import die, json_option, open_device, print_json

__all__ = ["ssh"]



@click.group("ssh")
def ssh() -> None:
    """SSH logins with this device's key: agent, authorized keys, imported keys, known hosts."""


# --------------------------------------------------------------------------- agent
@ssh.command("agent")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to listen (default: a new private folder)",
)
@click.option(
    "--confirm", is_flag=True, help="Ask for approval on the account's phone before every signature"
)
@click.option(
    "--confirm-wait",
    type=click.IntRange(5, 600),
    default=60,
    show_default=True,
    help="Seconds to wait for an approval",
)
@click.option(
    "--refresh",
    type=click.FloatRange(0.2, 3600),
    default=3.0,
    show_default=True,
    help="Seconds between checks of the account chain and the ssh collection",
)
def agent(socket_path: str | None, confirm: bool, confirm_wait: int, refresh: float) -> None:
    """Serve this device's SSH key (then imported keys) until SIGINT/SIGTERM."""
    import logging
    import signal

    from ._confirm import confirm_hook, phone_approver
    from ._device import DeviceKeySource
    from .agent import SshAgent

    logging.basicConfig(level=logging.WARNING, format="keystead ssh agent: %(message)s")
    with open_device(refresh_chain=False) as dev:
        dev.me()  # a device the cached chain already lists as removed does not start
        source = DeviceKeySource(dev, interval=refresh)
        hook = None
        if confirm:
            hook = confirm_hook(
                phone_approver(lambda: type(dev)(dev.home, dev.keystore), wait=confirm_wait),
                source.host_names,
            )
        server = SshAgent(source, confirm=hook, cache_seconds=0.2)
        path = server.bind(socket_path)

        def stop(*_: object) -> None:
            server.shutdown(timeout=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        source.start()
        print(f"SSH_AUTH_SOCK={path}", flush=True)
        print(
            f"keystead: serving {dev.account}/{dev.name}'s ssh keys; stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.serve_forever()
        finally:
            source.stop()


# ------------------------------------------------------------------ public keys
@ssh.command("public-key")
def public_key() -> None:
    """Print this device's SSH public key (an authorized_keys line)."""
    from ._device import device_agent_key

    with open_device(refresh_chain=False) as dev:
        dev.me()
        print(device_agent_key(dev).public.line())


@ssh.command("authorized-keys")
@click.argument("account")
@click.option("--server", required=True, help="The account's service URL")
@click.option(
    "--fingerprint", default=None, help="Pin the account key (as 'keystead account show' prints it)"
)
@click.option(
    "--max-stale",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="When the service is unreachable or slow, print the list verified before only if it "
    "is younger than this many seconds (else print nothing: no login)",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 120),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the service before calling it slow",
)
def authorized_keys(
    account: str, server: str, fingerprint: str | None, max_stale: int, timeout: float
) -> None:
    """For sshd's AuthorizedKeysCommand: the account's live keys, verified; no device needed.

    Exit status: 0 a verified list was printed; 1 no list (the service could not be asked
    and nothing fresh enough is cached, or another error); 5 the service serves a chain
    that is not the pinned account's (or a rollback), or not the --fingerprint given."""
    from ._authorized import PinRefused
    from ._authorized import authorized_keys as fetch

    try:
        result = fetch(
            server, account, fingerprint=fingerprint, max_stale=max_stale, timeout=timeout
        )
    except PinRefused as e:
        die(f"refusing {server}: {e}", 5)
    if result.offline:
        print(
            f"keystead: {result.problem}; printing the list verified {result.age:.0f} s ago "
            f"(chain entry {result.chain_seq}, imported-keys list {result.published_seq})",
            file=sys.stderr,
        )
    sys.stdout.write("".join(line + "\n" for line in result.lines))


# ---------------------------------------------------------------- imported keys
@ssh.command("import")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passphrase-stdin", is_flag=True, help="Read the key file's passphrase from stdin")
def import_key(keyfile: Path, passphrase_stdin: bool) -> None:
    """Import an existing private key: every device with the ssh scope will serve it."""
    from ._device import SshItems
    from ._items import encode_key, key_item_id
    from ._keys import KeyPassphraseRequired, load_private_key_file
    from ._publish import publish_imported, require_admin_secrets

    secret: bytes | None = None
    if passphrase_stdin:
        secret = sys.stdin.readline().rstrip("\r\n").encode()
    try:
        key = load_private_key_file(keyfile, secret)
    except KeyPassphraseRequired:
        if not sys.stdin.isatty():
            die("the key file is encrypted: pass --passphrase-stdin")
        import getpass

        key = load_private_key_file(keyfile, getpass.getpass("Key passphrase: ").encode())
    with open_device() as dev:
        require_admin_secrets(dev)
        items = SshItems(dev)
        items.sync()
        items.collection.put(key_item_id(key), encode_key(key))
        published = publish_imported(dev, items)
    print(f"imported {key.public.fingerprint} ({key.public.algorithm}) {key.comment}".rstrip())
    print(f"published {len(published.keys)} imported public key(s)", file=sys.stderr)


@ssh.command("keys")
@json_option
def keys(json_out: bool) -> None:
    """List the keys the agent serves: this device's, then imported ones."""
    from keystead.core import NetworkError

    from ._device import SshItems, device_agent_key

    with open_device(refresh_chain=False) as dev:
        me = dev.me()
        own = device_agent_key(dev).public
        out = [{"kind": "device", "fingerprint": own.fingerprint, "line": own.line()}]
        if me.can_read("ssh"):
            items = SshItems(dev)
            try:
                items.sync()
            except NetworkError:
                print(
                    "keystead: the service is unreachable; listing the local cache", file=sys.stderr
                )
            out += [
                {
                    "kind": "imported",
                    "id": i.item_id,
                    "fingerprint": i.key.public.fingerprint,
                    "line": i.key.public.line(),
                }
                for i in items.imported_keys()
            ]
    if json_out:
        print_json(out)
        return
    for k in out:
        print(f"{k['kind']:9} {k['fingerprint']}  {k['line'].split(' ', 2)[-1]}")


@ssh.command("remove")
@click.argument("fingerprint")
def remove(fingerprint: str) -> None:
    """Remove an imported key (by its SHA256: fingerprint) from every device and sshd."""
    from ._device import SshItems
    from ._publish import publish_imported, require_admin_secrets

    with open_device() as dev:
        require_admin_secrets(dev)
        items = SshItems(dev)
        items.sync()
        found = [i for i in items.imported_keys() if i.key.public.fingerprint == fingerprint]
        if not found:
            die(f"no imported key {fingerprint}")
        for i in found:
            items.collection.delete(i.item_id)
        publish_imported(dev, items)
    print(f"removed {fingerprint}")


# ------------------------------------------------------------------ known hosts
@ssh.group("known-hosts")
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
