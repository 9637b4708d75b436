"""``keystead passwords show``: one item of any type, every field.

Secrets (password, hidden fields, card number and code, SSN, passkey and SSH
private keys) are masked in the text view unless ``--reveal``; ``--json``
carries everything, as ``get --json`` does. ``--private-key`` prints an SSH-key
item's OpenSSH private key alone, for ``keystead ssh import -``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
from keystead.core.cli import die, json_option, print_json

from ._cli_vault import open_vault

if TYPE_CHECKING:
    from ._entry import Entry

__all__ = ["entry_json", "show"]

_SECRET_DETAILS = frozenset({"number", "code", "ssn", "privateKey", "passportNumber"})
_MASK = "********"


def entry_json(e: Entry) -> dict[str, Any]:
    """Every field of an entry, for ``--json``."""
    return {
        "id": e.id,
        "type": e.type,
        "name": e.name,
        "url": e.url,
        "other_urls": list(e.other_urls),
        "username": e.username,
        "password": e.password,
        "otpauth": e.otpauth,
        "notes": e.notes,
        "folder": e.folder,
        "fields": [{"name": n, "value": v, "kind": k} for n, v, k in e.fields],
        "details": dict(e.details),
        "passkeys": [dict(pk) for pk in e.passkeys],
        "created": e.created,
        "updated": e.updated,
        "conflict": e.had_conflict,
        "history": [
            {"field": h.field, "value": h.value, "replaced": h.replaced, "conflict": h.conflict}
            for h in e.history
        ],
        "extra": dict(e.extra),
    }


def _pick(entries: list[Entry], name: str) -> Entry:
    for test in (
        lambda e: e.id == name,
        lambda e: e.name == name,
        lambda e: e.name.casefold() == name.casefold(),
        lambda e: name in (e.url, *e.other_urls),
    ):
        found = [e for e in entries if test(e)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(f"{e.id} ({e.type})" for e in found[:5])
            die(f"{len(found)} items are called {name!r}: show one by id ({ids})")
    die(f"no item is called {name!r} ('keystead passwords list' shows names and ids)")


def _lines(e: Entry, reveal: bool) -> list[str]:
    def secret(v: str) -> str:
        return v if reveal or not v else _MASK

    out = [f"{e.type}: {e.name}", f"id: {e.id}"]
    if e.folder:
        out.append(f"folder: {e.folder}")
    out += [f"url: {u}" for u in (e.url, *e.other_urls) if u]
    if e.username:
        out.append(f"username: {e.username}")
    if e.password:
        out.append(f"password: {secret(e.password)}")
    if e.otpauth:
        out.append(f"totp: {secret(e.otpauth)}")
    for k, v in e.details:
        out.append(f"{k}: {secret(v) if k in _SECRET_DETAILS else v}")
    for n, v, kind in e.fields:
        out.append(f"field {n!r} ({kind}): {secret(v) if kind == 'hidden' else v}")
    for pk in e.passkeys:
        d = dict(pk)
        out.append(f"passkey: {d.get('rpId', '?')} user {d.get('userName', '?')}")
    if e.notes:
        out.append("notes: " + e.notes.replace("\n", "\n       "))
    if e.history:
        out.append(f"history: {len(e.history)} earlier values ('--json' lists them)")
    return out


@click.command("show")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Show secrets instead of masking them")
@click.option(
    "--private-key",
    is_flag=True,
    help="Print an SSH-key item's OpenSSH private key alone (for 'keystead ssh import -')",
)
@json_option
def show(name: str, reveal: bool, private_key: bool, json_out: bool) -> None:
    """Show one item of any type by its name (any case), id or URL."""
    with open_vault() as vault:
        entries = vault.named(name)
        if not entries:
            vault.try_sync()  # perhaps another device just added it
            entries = vault.named(name) or [m.entry for m in vault.find(name, best=False)]
    e = _pick(entries, name)
    if private_key:
        key = e.details_dict.get("privateKey")
        if e.type != "ssh-key" or not key:
            die(f"{e.name!r} is a {e.type} item with no SSH private key")
        sys.stdout.write(key if key.endswith("\n") else key + "\n")
        return
    if json_out:
        print_json(entry_json(e))
        return
    print("\n".join(_lines(e, reveal)))
