"""``keystead ssh``: the agent, sshd's AuthorizedKeysCommand, imported keys, synced known hosts.

``authorized-keys`` and ``known-hosts command`` run for sshd and ssh on every
connection: they unlock nothing and import only what they use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from keystead.core.cli import die, json_option, open_device, print_json

from ._cli_known_hosts import known_hosts

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
    _raise_file_limit()
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


def _raise_file_limit() -> None:
    """Every agent client is a file descriptor: take the hard limit, not the soft 1024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # keep the soft limit; running out is handled, just sooner


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
@click.argument(
    "keyfile", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path), required=False
)
@click.option(
    "--from-vault",
    "from_vault",
    metavar="NAME",
    default=None,
    help="Import the SSH-key item NAME of the password vault",
)
@click.option("--passphrase-stdin", is_flag=True, help="Read the key file's passphrase from stdin")
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the key file's passphrase from the first line of this file",
)
@click.option("--comment", default=None, help="Label for the key (default: its .pub, else name)")
def import_key(
    keyfile: Path | None,
    passphrase_stdin: bool,
    passphrase_file: Path | None,
    comment: str | None,
    from_vault: str | None,
) -> None:
    """Import a private key (KEYFILE, '-' for stdin, or --from-vault NAME): every device with
    the ssh scope serves it. OpenSSH, PEM and PKCS#8 files; Ed25519, ECDSA and RSA keys."""
    from ._device import SshItems
    from ._items import encode_key, key_item_id
    from ._keys import (
        MAX_IMPORTED_KEYS,
        AgentKey,
        KeyPassphraseRequired,
        load_private_key,
        load_private_key_file,
    )
    from ._publish import publish_imported, require_admin_secrets

    if (keyfile is None) == (from_vault is None):
        die("give a key file (or '-' for stdin) or --from-vault NAME, one of the two")
    from_stdin = str(keyfile) == "-"
    if from_stdin and passphrase_stdin:
        die("the key comes from stdin: give its passphrase with --passphrase-file")
    secret: bytes | None = None
    if passphrase_stdin:
        secret = sys.stdin.readline().rstrip("\r\n").encode()
    elif passphrase_file is not None:
        lines = passphrase_file.read_bytes().splitlines()
        secret = lines[0] if lines else b""
    data = sys.stdin.buffer.read(1024 * 1024) if from_stdin else None
    if from_vault is not None:
        data = _from_vault(from_vault)
    elif data is None and keyfile is not None and not keyfile.is_file():
        die(f"cannot read {keyfile}: no such file")

    def load(passphrase: bytes | None) -> AgentKey:
        if data is not None:
            return load_private_key(data, passphrase, comment or from_vault or "stdin")
        assert keyfile is not None
        return load_private_key_file(keyfile, passphrase)

    try:
        key = load(secret)
    except KeyPassphraseRequired:
        if not (_controlling_terminal() if from_stdin else sys.stdin.isatty()):
            die(
                "the key is encrypted: give its passphrase with --passphrase-stdin or "
                "--passphrase-file"
            )
        import getpass

        key = load(getpass.getpass("Key passphrase: ").encode())  # asks on /dev/tty
    if comment is not None:
        key = AgentKey(key.private, comment)
    with open_device() as dev:
        require_admin_secrets(dev)
        items = SshItems(dev)
        items.sync()
        item_id = key_item_id(key)
        others = [i for i in items.imported_keys() if i.item_id != item_id]
        if len(others) >= MAX_IMPORTED_KEYS:
            die(
                f"already {len(others)} imported keys: the limit is {MAX_IMPORTED_KEYS} "
                f"(with the device's own key, {MAX_IMPORTED_KEYS + 1}: sshd's default "
                "MaxAuthTries); remove one with 'keystead ssh remove FINGERPRINT'"
            )
        items.collection.put(item_id, encode_key(key))
        published = publish_imported(dev, items)
    print(f"imported {key.public.fingerprint} ({key.public.algorithm}) {key.comment}".rstrip())
    print(f"published {len(published.keys)} imported public key(s)", file=sys.stderr)


def _from_vault(name: str) -> bytes:
    """The key file of the vault's SSH-key item ``name``, through the named service the
    passwords adapter provides (this adapter does not import it)."""
    from keystead.core.capabilities import SshKeySource, capabilities_for

    from . import adapter

    with open_device() as dev:
        return capabilities_for(dev, adapter).service(SshKeySource).ssh_private_key(name)


def _controlling_terminal() -> bool:
    """Whether getpass can ask on /dev/tty although stdin carries the key."""
    import os

    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


@ssh.command("keys")
@json_option
def keys(json_out: bool) -> None:
    """List the keys the agent serves: this device's, then imported ones."""
    from keystead.core import NetworkError

    from ._device import SshItems, device_agent_key
    from ._keys import MAX_AGENT_KEYS

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
            served = {i.item_id for i in items.served_keys()}
            out += [
                {
                    "kind": "imported" if i.item_id in served else "unserved",
                    "id": i.item_id,
                    "fingerprint": i.key.public.fingerprint,
                    "line": i.key.public.line(),
                }
                for i in items.imported_keys()
            ]
    unserved = sum(k["kind"] == "unserved" for k in out)
    if unserved:
        print(
            f"keystead: {unserved} imported key(s) over the limit of {MAX_AGENT_KEYS} keys per "
            "agent (sshd's default MaxAuthTries) are not served; remove some with "
            "'keystead ssh remove FINGERPRINT'",
            file=sys.stderr,
        )
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


@ssh.command("publish")
def publish() -> None:
    """Sign and publish the imported keys' list again (admin), e.g. after an admin removal
    rotated the account key: sshd's authorized-keys lists only what the current key signed."""
    from ._device import SshItems
    from ._publish import publish_imported, require_admin_secrets

    with open_device() as dev:
        require_admin_secrets(dev)
        items = SshItems(dev)
        items.sync()
        published = publish_imported(dev, items)
    print(f"published {len(published.keys)} imported public key(s)")


ssh.add_command(known_hosts)
