"""``keystead totp``: one-time-code secrets synced through the ``totp`` collection.

``code`` and ``list`` sync first and fall back to the local cache when the
service cannot be reached, so codes keep working offline on a device that has
synced once. Item ids are random: the service learns nothing from them.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

import click
from keystead.core.cli import die, json_option, open_device, print_json
from keystead.core.errors import NetworkError

if TYPE_CHECKING:
    from keystead.core import Collection, Device, Record

    from ._otpauth import OtpAuth

__all__ = ["totp"]

COLLECTION = "totp"


@click.group("totp")
def totp() -> None:
    """TOTP/HOTP codes, with secrets synced to every device of the account."""


def _collection(dev: Device, *, offline_ok: bool) -> Collection:
    """The synced collection; with ``offline_ok``, the local cache when the service is away."""
    from keystead.core import Collection

    coll = Collection(dev, COLLECTION)
    try:
        coll.sync()  # verifies the newest chain and that this device is in it
    except NetworkError:
        if not offline_ok:
            raise
        dev.me(dev.chain(refresh=False))
        print(
            "keystead: the service is unreachable; using this device's cached codes",
            file=sys.stderr,
        )
    return coll


def _credentials(coll: Collection) -> list[tuple[Record, OtpAuth]]:
    from ._totp_items import credential_from_item

    return [(r, credential_from_item(r.plaintext)) for r in coll.records()]


def _find(coll: Collection, name: str) -> tuple[Record, OtpAuth]:
    from ._totp_items import find_credential

    creds = _credentials(coll)
    found = find_credential([c for _, c in creds], name)
    return next((r, c) for r, c in creds if c is found)


@totp.command("add")
@click.argument("uri")
@click.option(
    "--account",
    default=None,
    help="Name for a steam:// secret, which carries none (default: Steam)",
)
def add(uri: str, account: str | None) -> None:
    """Add an otpauth:// URI (as a QR code carries it) or a steam:// secret."""
    from ._otpauth import OtpAuth
    from ._totp_items import credential_to_item

    if account is not None and not uri.strip().lower().startswith("steam://"):
        die("--account names a steam:// secret; an otpauth:// URI names itself")
    otp = OtpAuth.from_uri(uri, account=account)
    with open_device(refresh_chain=False) as dev:
        coll = _collection(dev, offline_ok=False)
        if any(c.name == otp.name for _, c in _credentials(coll)):
            die(f"a credential named {otp.name!r} already exists (remove it first)")
        coll.put(f"totp-{secrets.token_hex(12)}", credential_to_item(otp))
    print(f"added {otp.name}")


@totp.command("list")
@json_option
def list_(json_out: bool) -> None:
    """The credentials (never their secrets)."""
    with open_device(refresh_chain=False) as dev:
        creds = [c for _, c in _credentials(_collection(dev, offline_ok=True))]
    out: list[dict[str, Any]] = sorted(
        (
            {
                "name": c.name,
                "issuer": c.issuer,
                "account": c.account,
                "kind": c.kind,
                "digits": c.digits,
                "algorithm": c.algorithm,
                **({"encoder": c.encoder} if c.encoder else {}),
                **({"period": c.period} if c.kind == "totp" else {"counter": c.counter}),
            }
            for c in creds
        ),
        key=lambda d: d["name"].casefold(),
    )
    if json_out:
        print_json(out)
        return
    for c in out:
        print(c["name"])


@totp.command("code")
@click.argument("name")
@click.option(
    "--at",
    type=click.IntRange(min=0),
    default=None,
    help="Unix time to compute the code for (default: now)",
)
def code(name: str, at: int | None) -> None:
    """Print the current code of NAME (works offline from the cache)."""
    from ._totp_items import credential_to_item, take_code

    with open_device(refresh_chain=False) as dev:
        coll = _collection(dev, offline_ok=True)
        record, otp = _find(coll, name)
        value, advanced = take_code(otp, int(time.time()) if at is None else at)
        if advanced is not None:  # HOTP: never show one counter value twice
            coll.put(
                record.id, credential_to_item(advanced), base_version=record.version, offline=True
            )
    print(value)


@totp.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove a credential from every device."""
    with open_device(refresh_chain=False) as dev:
        coll = _collection(dev, offline_ok=False)
        record, otp = _find(coll, name)
        coll.delete(record.id, base_version=record.version)
    print(f"removed {otp.name}")


@totp.command("qr")
@click.argument("name")
def qr(name: str) -> None:
    """Show NAME as a QR code, to add it to another authenticator app."""
    from ._qr import render_qr

    with open_device(refresh_chain=False) as dev:
        _, otp = _find(_collection(dev, offline_ok=True), name)
    print(
        "keystead: this QR code holds the secret; do not let anyone photograph it", file=sys.stderr
    )
    sys.stdout.write(render_qr(otp.to_uri()))
