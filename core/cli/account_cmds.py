"""``keystead account``, ``keystead device``, ``keystead serve`` and ``keystead sync``."""

from __future__ import annotations

import socket
import sys
from typing import Any

import click

from ..adapter import all_collections, discover
from ..errors import StorageError
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


server_option = click.option("--server", required=True,
                             help="The service URL, e.g. http://127.0.0.1:8470")
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
    dev, recovery = create_account(home(), server, name, device_name or _default_device_name(),
                                   passphrase, collections=all_collections(discover()))
    with dev:
        print(f"account {dev.account} created; this device is {dev.name!r} (admin)",
              file=sys.stderr)
        print("write the recovery key down now: it is shown only this once", file=sys.stderr)
        print(f"recovery key: {recovery}")


@account.command("show")
@json_option
def account_show(json_out: bool) -> None:
    """Show the account, this device and the verified chain head."""
    with open_device() as dev:
        state = dev.chain(refresh=False)
        me = dev.me(state)
        info = {
            "account": dev.account, "address": dev.address, "server": dev.server,
            "account_fingerprint": state.account_key.fingerprint,
            "device": {"name": me.name, "id": me.id, "role": me.role,
                       "scopes": list(me.scopes), "fingerprint": me.fingerprint},
            "devices": len(state.live_devices),
            "collections": sorted(state.collections),
            "chain": {"seq": state.seq, "head": state.head},
        }
    if json_out:
        print_json(info)
        return
    print(f"account      {info['address']}")
    print(f"fingerprint  {info['account_fingerprint']}")
    print(f"this device  {me.name} ({me.role}), {me.fingerprint}")
    print(f"devices      {info['devices']} live")
    print(f"chain        entry {state.seq}, head {state.head[:16]}")


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
    with recover_account(home(), server, name, key, device_name or _default_device_name(),
                         passphrase) as dev:
        print(f"recovered account {dev.account}; this device is {dev.name!r} (admin)")


@device.command("join")
@click.argument("name")
@server_option
@device_option
@click.option("--wait", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for approval")
def device_join(name: str, server: str, device_name: str | None, wait: float) -> None:
    """Ask to join ACCOUNT; prints a pairing code for an admin device to approve."""
    from ..account import start_join, wait_for_approval

    h = home()
    passphrase = get_passphrase(confirm=not h.exists)
    if not h.exists:
        ticket = start_join(h, server, name, device_name or _default_device_name(), passphrase)
        print(f"pairing code: {ticket.code}", flush=True)
        print(f"verification: {ticket.sas}", flush=True)
        print(f"fingerprint: {ticket.device_fingerprint}", flush=True)
        print("on an admin device run: keystead device approve CODE (check that the "
              "verification numbers match)", file=sys.stderr, flush=True)
    dev = wait_for_approval(h, passphrase, wait)
    if dev is None:
        die("not approved yet; run 'keystead device join' again with the same "
            "KEYSTEAD_HOME to keep waiting")
    with dev:
        me = dev.me()
        print(f"approved: {me.name} joined {dev.account} as {me.role}")


@device.command("approve")
@click.argument("code")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member",
              show_default=True)
@click.option("--scopes", default=None, help="Comma-separated collections (default: all)")
@click.option("--yes", "-y", is_flag=True, help="Approve without asking")
def device_approve(code: str, role: str, scopes: str | None, yes: bool) -> None:
    """Approve a joining device after comparing its fingerprint and verification number."""
    from ..account import approve_device, pairing_details

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
        info = approve_device(dev, details, role, wanted)
        print(f"approved {info.name} as {info.role} with scopes "
              f"{', '.join(s for s in info.scopes if not s.startswith('_'))}")


def _device_json(d: Any, me: str) -> dict[str, Any]:
    return {"name": d.name, "id": d.id, "role": d.role,
            "scopes": [s for s in d.scopes if not s.startswith("_")],
            "fingerprint": d.fingerprint, "added": iso_time(d.added_time),
            "this": d.id == me}


@device.command("list")
@json_option
def device_list(json_out: bool) -> None:
    """The account's live devices, from the verified chain."""
    with open_device() as dev:
        devices = [_device_json(d, dev.device_id) for d in dev.chain(refresh=False).live_devices]
    if json_out:
        print_json(devices)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "role", "scopes", "fingerprint", "added")
    for d in devices:
        table.add_row(d["name"] + (" (this)" if d["this"] else ""), d["role"],
                      ",".join(d["scopes"]), d["fingerprint"], d["added"])
    Console().print(table)


@device.command("remove")
@click.argument("name")
def device_remove(name: str) -> None:
    """Remove a device everywhere: grants deleted, new epochs, new sharing key."""
    from ..account import remove_device

    with open_device() as dev:
        info = remove_device(dev, name)
        print(f"removed {info.name}; its grants are deleted and "
              f"{len(info.scopes)} collections moved to a new epoch")


@click.command("sync")
@json_option
def sync(json_out: bool) -> None:
    """Verify the newest chain and fetch every collection this device can read."""
    from ..collections import Collection

    resolvers = {}
    for adapter in discover().values():
        pick = getattr(adapter, "resolver", None)
        for coll in adapter.collections:
            if pick is not None and (fn := pick(coll)) is not None:
                resolvers[coll] = fn
    with open_device() as dev:
        me = dev.me()
        result: dict[str, Any] = {"chain": dev.chain(refresh=False).seq, "collections": {}}
        for scope in me.scopes:
            if scope.startswith("_"):
                continue
            r = Collection(dev, scope).sync(resolve=resolvers.get(scope), refresh_chain=False)
            result["collections"][scope] = {"fetched": r.fetched, "pushed": r.pushed,
                                            "conflicts": r.conflicts}
    if json_out:
        print_json(result)
    else:
        n = sum(c["fetched"] for c in result["collections"].values())
        print(f"synced: chain entry {result['chain']}, {n} changed items in "
              f"{len(result['collections'])} collections")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option("--database-url", default=None,
              help="Any SQLAlchemy URL (default: SQLite file). PostgreSQL needs "
                   "pip install 'keystead[postgres]'")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Service processes (more than 1 needs PostgreSQL)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A TOML file of limits (see keystead.core.service.config); KEYSTEAD_* "
                   "environment variables override it")
def serve(host: str, port: int, database_url: str | None, workers: int,
          config_file: str | None) -> None:
    """Run the service (SQLite in the data folder unless --database-url is given)."""
    from pathlib import Path

    from ..service import ServiceConfig, default_database_url
    from ..service.serve import run_service

    config = ServiceConfig.load(Path(config_file) if config_file else None)
    url = database_url or default_database_url()
    run_service(url, host, port, workers, config, shown=_redact(url))


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise StorageError("cannot open the database: not a database URL") from None


