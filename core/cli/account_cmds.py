"""``keystead account``, ``keystead device``, ``keystead serve`` and ``keystead sync``."""

from __future__ import annotations

import socket
import sys
from typing import Any

import click

from ..adapter import all_collections, discover
from ..adapter import resolvers as adapter_resolvers
from ..errors import KeysteadError, StorageError
from ._common import (
    die,
    get_passphrase,
    home,
    iso_time,
    json_option,
    open_device,
    print_json,
)


@click.group("account")
def account() -> None:
    """Create, show and recover the account."""


@click.group("device")
def device() -> None:
    """Join, approve, list and remove devices."""


server_option = click.option(
    "--server", required=True, help="The service URL, e.g. http://127.0.0.1:8470"
)
device_option = click.option("--device", "device_name", default=None, help="This device's name")


def _default_device_name() -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname().lower())
    return name.strip("-.")[:63] or "device"


@account.command("create")
@click.argument("name")
@server_option
@device_option
def account_create(name: str, server: str, device_name: str | None) -> None:
    """Create an account with this device as its first admin; prints the recovery key once."""
    from ..account import create_account

    passphrase = get_passphrase(confirm=True)
    dev, recovery = create_account(
        home(),
        server,
        name,
        device_name or _default_device_name(),
        passphrase,
        collections=all_collections(discover()),
    )
    with dev:
        print(
            f"account {dev.account} created; this device is {dev.name!r} (admin)", file=sys.stderr
        )
        print("write the recovery key down now: it is shown only this once", file=sys.stderr)
        print(f"recovery key: {recovery}")


@account.command("show")
@json_option
def account_show(json_out: bool) -> None:
    """Show the account, this device and the verified chain head (the cached chain, marked
    so, when the service cannot be reached)."""
    from ..names import read_names

    with open_device(refresh_chain=False) as dev:
        state, cached = _chain_or_cached(dev)
        me = dev.me(state)
        names = read_names(dev, sync=not cached)  # labels and groups by name, ids hidden
        info = {
            "account": dev.account,
            "address": dev.address,
            "server": dev.server,
            "account_fingerprint": state.account_key.fingerprint,
            "fingerprint": state.signing_key.fingerprint,
            "key_generation": state.key_generation,
            "device": {
                "name": me.name,
                "id": me.id,
                "role": me.role,
                "scopes": [names.display(s) for s in me.scopes],
                "fingerprint": me.fingerprint,
            },
            "devices": len(state.live_devices),
            "collections": sorted(names.display(c) for c in state.collections),
            "chain": {"seq": state.seq, "head": state.head, "cached": cached},
        }
    if json_out:
        print_json(info)
        return
    print(f"account      {info['address']}")
    print(f"fingerprint  {info['account_fingerprint']} (the account's identity, pinned)")
    print(f"current key  {info['fingerprint']} (generation {state.key_generation})")
    print(f"this device  {me.name} ({me.role}), {me.fingerprint}")
    print(f"devices      {info['devices']} live")
    print(
        f"chain        entry {state.seq}, head {state.head[:16]}"
        + (" (cached: the service could not be reached)" if cached else "")
    )


def _chain_or_cached(dev: Any) -> tuple[Any, bool]:
    """The newest verified chain, or the cached one (True) when the service is unreachable.
    Only a network failure falls back: a refused or rolled-back chain is still an error."""
    from ..errors import NetworkError

    try:
        return dev.chain(), False
    except NetworkError:
        return dev.chain(refresh=False), True


@account.command("recover")
@click.argument("name")
@server_option
@device_option
def account_recover(name: str, server: str, device_name: str | None) -> None:
    """Restore the account onto this (new) device with the recovery key (stdin or prompt)."""
    from ..account import recover_account

    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass("Recovery key: ")
    else:
        key = sys.stdin.readline()
    passphrase = get_passphrase(confirm=True)
    with recover_account(
        home(), server, name, key, device_name or _default_device_name(), passphrase
    ) as dev:
        print(f"recovered account {dev.account}; this device is {dev.name!r} (admin)")


@device.command("join")
@click.argument("name", required=False)
@click.option("--server", default=None, help="The service URL, e.g. http://127.0.0.1:8470")
@click.option(
    "--invite",
    "invite_url",
    default=None,
    help="An invite from 'keystead device invite' (the account, its service and the "
    "account key's fingerprint, which is checked before anything is sent)",
)
@device_option
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for approval",
)
def device_join(
    name: str | None,
    server: str | None,
    invite_url: str | None,
    device_name: str | None,
    wait: float,
) -> None:
    """Ask to join ACCOUNT; prints a pairing code for an admin device to approve."""
    from ..account import start_join, wait_for_approval
    from ..pairing import parse_invite

    fingerprint = None
    if invite_url is not None:
        invite = parse_invite(invite_url)
        if name not in (None, invite.account) or server not in (None, invite.server):
            die("the invite names another account or service than the arguments")
        name, server, fingerprint = invite.account, invite.server, invite.fingerprint
    if name is None or server is None:
        die("give ACCOUNT and --server, or --invite URL")
    h = home()
    passphrase = get_passphrase(confirm=not h.exists)
    if not h.exists:
        ticket = start_join(
            h,
            server,
            name,
            device_name or _default_device_name(),
            passphrase,
            account_fingerprint=fingerprint,
        )
        print(f"pairing code: {ticket.code}", flush=True)
        print(f"verification: {ticket.sas}", flush=True)
        print(f"fingerprint: {ticket.device_fingerprint}", flush=True)
        print(
            "on an admin device run: keystead device approve CODE (check that the "
            "verification numbers match)",
            file=sys.stderr,
            flush=True,
        )
    dev = wait_for_approval(h, passphrase, wait)
    if dev is None:
        die(
            "not approved yet; run 'keystead device join' again with the same "
            "KEYSTEAD_HOME to keep waiting"
        )
    with dev:
        me = dev.me()
        print(f"approved: {me.name} joined {dev.account} as {me.role}")


@device.command("invite")
@click.option(
    "--url",
    "base_url",
    default=None,
    help="The service's address as the phone reaches it, e.g. https://192.168.1.20:8443 "
    "(default: this device's server)",
)
@click.option("--no-qr", is_flag=True, help="Print the address only")
def device_invite(base_url: str | None, no_qr: bool) -> None:
    """Invite a phone: prints the app's address with this account in it, and a QR code.

    The phone opens it, checks the account key's fingerprint, and shows a pairing code and
    a verification number; approve it here with 'keystead device approve CODE'."""
    from ..pairing import Invite
    from ..qr import render_qr

    with open_device() as dev:
        if dev.me().role != "admin":
            die("only an admin device can approve the phone; invite from an admin device")
        server = _app_base(base_url or dev.server)
        invite = Invite(server, dev.account, dev.chain(refresh=False).account_key.fingerprint)
    url = invite.url
    print(f"invite: {url}", flush=True)
    if not no_qr:
        print(render_qr(url), end="", flush=True)
    if server.startswith("http://") and not _loopback_url(server):
        print(
            "warning: a phone runs the app only over https: serve with --tls-cert or "
            "--tls-self-signed and pass --url https://...",
            file=sys.stderr,
        )
    print(
        f"open it on the phone (account fingerprint {invite.fingerprint}); then approve the "
        "code the phone shows: keystead device approve CODE --scopes confirm,totp,passwords",
        file=sys.stderr,
        flush=True,
    )


def _loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    from ..address import is_loopback_host

    return is_loopback_host(urlsplit(url).hostname or "")


def _app_base(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        die(f"--url must be an http(s) address like https://HOST:PORT, not {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/app"):
        path = path[: -len("/app")]
    return f"{parts.scheme}://{parts.netloc}{path}"


@device.command("approve")
@click.argument("code")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member", show_default=True)
@click.option("--scopes", default=None, help="Comma-separated collections (default: all)")
@click.option("--yes", "-y", is_flag=True, help="Approve without asking")
def device_approve(code: str, role: str, scopes: str | None, yes: bool) -> None:
    """Approve a joining device after comparing its fingerprint and verification number."""
    from ..account import approve_device, pairing_details
    from ..names import read_names

    with open_device() as dev:
        details = pairing_details(dev, code)
        print(f"device:       {details.device['name']}", file=sys.stderr)
        print(f"fingerprint:  {details.fingerprint}", file=sys.stderr)
        print(f"verification: {details.sas}", file=sys.stderr)
        if not yes and sys.stdin.isatty():
            if not click.confirm("Do the verification numbers match on both devices?"):
                die("not approved")
        wanted = None if scopes is None else [s.strip() for s in scopes.split(",") if s.strip()]
        if wanted is not None and not wanted:
            die("--scopes needs at least one collection")
        # Scopes are items collections; labels and groups (keys collections, opened through
        # the account's grant with the documents / messages scope) are never one, so no
        # name maps to a scope here: the names are only shown.
        names = read_names(dev)
        info = approve_device(dev, details, role, wanted)
        print(
            f"approved {info.name} as {info.role} with scopes "
            f"{', '.join(names.display(s) for s in info.scopes if not s.startswith('_'))}"
        )


def _device_json(d: Any, me: str, names: Any) -> dict[str, Any]:
    return {
        "name": d.name,
        "id": d.id,
        "role": d.role,
        "scopes": [names.display(s) for s in d.scopes if not s.startswith("_")],
        "fingerprint": d.fingerprint,
        "added": iso_time(d.added_time),
        "this": d.id == me,
    }


@device.command("list")
@json_option
def device_list(json_out: bool) -> None:
    """The account's live devices, from the verified chain (or the cached chain, said so on
    stderr, when the service cannot be reached)."""
    from ..names import read_names

    with open_device(refresh_chain=False) as dev:
        state, cached = _chain_or_cached(dev)
        dev.me(state)
        names = read_names(dev, sync=not cached)
        devices = [_device_json(d, dev.device_id, names) for d in state.live_devices]
    if cached:
        print(
            f"keystead: the service could not be reached; cached chain (entry {state.seq})",
            file=sys.stderr,
        )
    if json_out:
        print_json(devices)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "role", "scopes", "fingerprint", "added")
    for d in devices:
        table.add_row(
            d["name"] + (" (this)" if d["this"] else ""),
            d["role"],
            ",".join(d["scopes"]),
            d["fingerprint"],
            d["added"],
        )
    Console().print(table)


@device.command("remove")
@click.argument("name")
def device_remove(name: str) -> None:
    """Remove a device everywhere: grants deleted, new epochs, new sharing key."""
    from ..account import remove_device

    with open_device() as dev:
        info = remove_device(dev, name)
        state = dev.chain(refresh=False)
        print(
            f"removed {info.name}; every collection it could read moved to a new epoch"
            + (
                f"; the account key moved to generation {state.key_generation}"
                if info.role == "admin"
                else ""
            )
        )
        if info.role == "admin":
            _after_rotation(dev)


def _after_rotation(dev: Any) -> None:
    """Adapters re-sign what they keep signed by the account key; one failing does not undo
    the removal (it is done), and says what to run again."""
    from ..adapter import HasRotationHook

    for adapter in discover().values():
        if isinstance(adapter, HasRotationHook):
            try:
                line = adapter.after_account_key_rotation(dev)
            except KeysteadError as e:
                print(
                    f"keystead: {adapter.name} could not re-sign its state under the new "
                    f"account key ({e}); run 'keystead {adapter.name} publish'",
                    file=sys.stderr,
                )
                continue
            if line:
                print(line)


@click.command("sync")
@click.option(
    "--drop-unreadable",
    is_flag=True,
    help="Admin: replace items no device can open or trust by deletions.",
)
@json_option
def sync(drop_unreadable: bool, json_out: bool) -> None:
    """Verify the newest chain and fetch every collection this device can read.

    On an admin device it also finishes an account change whose answer was lost, and
    re-grants labels and groups to grantee accounts that removed a device."""
    from ..account import finish_pending, refresh_grants
    from ..adapter import HasSyncedHook
    from ..collections import Collection

    adapters = discover()
    resolvers = adapter_resolvers(adapters)
    synced = {
        coll: a.synced
        for a in adapters.values()
        if isinstance(a, HasSyncedHook)
        for coll in a.collections
    }
    with open_device() as dev:
        finish_pending(dev)
        me = dev.me(dev.chain())
        if drop_unreadable and me.role != "admin":
            die("only an admin device can drop unreadable items")
        renewed = refresh_grants(dev)
        result: dict[str, Any] = {
            "chain": dev.chain(refresh=False).seq,
            "collections": {},
            "renewed_grants": renewed,
        }
        for scope in me.scopes:
            if scope.startswith("_"):
                continue
            target = Collection(dev, scope)
            r = target.sync(resolve=resolvers.get(scope), refresh_chain=False)
            dropped = target.drop([u.id for u in r.unreadable]) if drop_unreadable else 0
            if scope in synced:
                synced[scope](dev, scope)  # e.g. the vault's lookup index, kept current
            result["collections"][scope] = {
                "fetched": r.fetched,
                "pushed": r.pushed,
                "conflicts": r.conflicts,
                "unreadable": [
                    {"id": u.id, "writer": u.writer, "reason": u.reason} for u in r.unreadable
                ],
                "dropped": dropped,
            }
    if json_out:
        print_json(result)
        return
    for scope, c in result["collections"].items():
        for u in c["unreadable"]:
            print(
                f"keystead: skipped {scope}/{u['id']} (written by device {u['writer']}): "
                f"{u['reason']}"
                + (
                    "; dropped"
                    if c["dropped"]
                    else "; an admin can drop it: keystead sync --drop-unreadable"
                ),
                file=sys.stderr,
            )
    n = sum(c["fetched"] for c in result["collections"].values())
    print(
        f"synced: chain entry {result['chain']}, {n} changed items in "
        f"{len(result['collections'])} collections"
    )
    if renewed:
        print(f"renewed grants of {', '.join(renewed)} (a grantee removed a device)")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option(
    "--database-url",
    default=None,
    help="Any SQLAlchemy URL (default: SQLite file). PostgreSQL needs "
    "pip install 'keystead[postgres]'",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Service processes (more than 1 needs PostgreSQL)",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A TOML file of limits (see keystead.core.service.config); KEYSTEAD_* "
    "environment variables override it",
)
@click.option("--tls-cert", default=None, help="HTTPS: the certificate (PEM, with its chain)")
@click.option("--tls-key", default=None, help="HTTPS: the certificate's private key (PEM)")
@click.option(
    "--tls-self-signed",
    is_flag=True,
    help="HTTPS with a self-signed certificate kept in the data folder (a home-network trial)",
)
@click.option(
    "--tls-name",
    "tls_names",
    multiple=True,
    help="A host name or IP address the self-signed certificate names (repeatable; "
    "default: this machine's LAN address and loopback)",
)
def serve(
    host: str,
    port: int,
    database_url: str | None,
    workers: int,
    config_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_self_signed: bool,
    tls_names: tuple[str, ...],
) -> None:
    """Run the service (SQLite in the data folder unless --database-url is given).

    Phones need HTTPS for the app at /app/: give --tls-cert and --tls-key, or
    --tls-self-signed for a trial (docs/PHONE.md)."""
    from pathlib import Path

    from ..service import ServiceConfig, default_database_url
    from ..service.serve import run_service

    config = ServiceConfig.load(Path(config_file) if config_file else None)
    tls = _tls(host, port, tls_cert, tls_key, tls_self_signed, tls_names)
    url = database_url or default_database_url()
    run_service(url, host, port, workers, config, shown=_redact(url), tls=tls)


def _tls(
    host: str,
    port: int,
    cert: str | None,
    key: str | None,
    self_signed: bool,
    names: tuple[str, ...],
) -> tuple[str, str] | None:
    """Check the TLS options before anything listens; print what a phone needs."""
    from ..qr import render_qr
    from ..service import service_dir
    from ..service import tls as tlsmod

    if self_signed and (cert or key):
        die("--tls-self-signed and --tls-cert/--tls-key exclude each other")
    if (cert is None) != (key is None):
        die("--tls-cert and --tls-key go together")
    if names and not self_signed:
        die("--tls-name is for --tls-self-signed")
    if cert is not None and key is not None:
        files = tlsmod.check_tls_files(cert, key)
        print(f"TLS certificate SHA256 {files.fingerprint}", file=sys.stderr, flush=True)
        return str(files.cert), str(files.key)
    if not self_signed:
        return None
    wanted = list(names) or tlsmod.default_names(host)
    files = tlsmod.self_signed(service_dir() / "tls", wanted)
    shown_port = f":{port}" if port != 443 else ""
    first = wanted[0].strip("[]")
    app = f"https://{'[' + first + ']' if ':' in first else first}{shown_port}/app/"
    made = "made" if files.created else "reused"
    print(
        f"self-signed certificate ({made}): {files.cert}\n"
        f"  names: {', '.join(files.names)}\n"
        f"  SHA256 {files.fingerprint}\n"
        f"the phone app: {app}\n"
        "check the fingerprint on the phone before trusting the certificate; install it as "
        "a trusted certificate so the app can install and receive pushes",
        file=sys.stderr,
        flush=True,
    )
    print(render_qr(app), file=sys.stderr, flush=True)
    if _loopback_url(f"http://{host}"):
        print(
            f"note: listening on {host} only; a phone reaches the service with --host 0.0.0.0",
            file=sys.stderr,
            flush=True,
        )
    return str(files.cert), str(files.key)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise StorageError("cannot open the database: not a database URL") from None
