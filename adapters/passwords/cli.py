"""``keystead passwords``: the vault on the command line, and the browser's native host.

Passwords travel on stdin (or a terminal prompt), never in argv; errors name
entries by URL and username, never by password. ``get`` reads the local cache
and syncs only when the entry is not there (or with ``--sync``), so it costs
one keystore unlock and a few AEAD opens.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
from keystead.core.cli import die, json_option, print_json

from ._cli_browser import browser
from ._cli_show import show
from ._cli_transfer import export, import_
from ._cli_vault import open_vault as _vault

if TYPE_CHECKING:
    from ._match import Match
    from ._vault import Stored

__all__ = ["passwords"]


@click.group("passwords")
def passwords() -> None:
    """The password vault: add, get, list, edit, import, export, browser autofill."""


def _read_secret(prompt: str = "Password") -> str:
    """A password from a terminal prompt (asked twice) or from stdin (one trailing newline off)."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"Repeat {prompt.lower()}: ") != first:
            die("the two entries did not match")
        value = first
    else:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    if not value:
        die("empty password refused")
    return value


def _generated(length: int | None, words: int | None) -> str:
    from ._generate import generate_passphrase, generate_password

    try:
        if words is not None:
            return generate_passphrase(words)
        return generate_password(20 if length is None else length)
    except ValueError as e:
        die(str(e))


def _report(stored: Stored, what: str) -> None:
    e = stored.entry
    note = ""
    if stored.merged:
        note = "; merged with a concurrent edit from another device (see history)"
    if stored.queued:
        note += "; offline: queued, pushed at the next sync"
    print(f"{what} {e.url} ({e.username or 'no username'}){note}", file=sys.stderr)


def _match_json(m: Match) -> dict[str, Any]:
    e = m.entry
    return {
        "id": e.id,
        "name": e.name,
        "url": e.url,
        "username": e.username,
        "password": e.password,
        "notes": e.notes,
        "folder": e.folder,
        "other_urls": list(e.other_urls),
        "match": m.kind.name.lower(),
        "matched_url": m.url,
        "conflict": e.had_conflict,
        "created": e.created,
        "updated": e.updated,
        "history": [
            {"field": h.field, "value": h.value, "replaced": h.replaced, "conflict": h.conflict}
            for h in e.history
        ],
    }


# ---------------------------------------------------------------------------- commands
@passwords.command("add")
@click.argument("url")
@click.option("--username", "-u", required=True)
@click.option("--name", default=None, help="Display name (default: the URL's host)")
@click.option("--notes", default="")
@click.option("--generate", is_flag=True, help="Generate the password instead of reading it")
@click.option("--length", type=int, default=None, help="Generated password length")
@click.option("--words", type=int, default=None, help="Generate a passphrase of N words")
def add(
    url: str,
    username: str,
    name: str | None,
    notes: str,
    generate: bool,
    length: int | None,
    words: int | None,
) -> None:
    """Add a login; the password comes on stdin or from a prompt (never as an argument)."""
    from ._entry import Entry
    from ._match import _split
    from ._vault import now_ms
    from .formats._common import new_uuid, site_name

    if (length is not None or words is not None) and not generate:
        die("--length and --words go with --generate")
    if _split(url) is None:
        die(f"not an http(s) URL or host: {url}")
    password = _generated(length, words) if generate else _read_secret()
    with _vault(online=True) as vault:
        same = [m for m in vault.find(url, username=username) if m.kind.name == "EXACT"]
        if same:
            die(f"{url} ({username}) is already in the vault: use 'keystead passwords edit'")
        t = now_ms()
        entry = Entry(
            id=new_uuid(),
            name=site_name(url) if name is None else name,
            url=url,
            username=username,
            password=password,
            notes=notes,
            created=t,
            updated=t,
        )
        _report(vault.write(entry), "added")
    if generate:
        print("generated password stored; 'keystead passwords get URL' prints it", file=sys.stderr)


@passwords.command("get")
@click.argument("url")
@click.option("--username", "-u", default=None)
@click.option("--sync", "sync_first", is_flag=True, help="Sync before looking")
@json_option
def get(url: str, username: str | None, sync_first: bool, json_out: bool) -> None:
    """Print the password for URL (exact URL, else same origin, else same site)."""
    from keystead.core import NotFound

    from ._vault import Ambiguous

    with _vault() as vault:
        if sync_first:
            vault.sync()
        try:
            match = vault.one(url, username)
        except Ambiguous:
            raise
        except NotFound:
            if sync_first:
                raise
            vault.sync()  # not in the local cache: perhaps another device just added it
            match = vault.one(url, username)
    if json_out:
        print_json(_match_json(match))
        return
    kind = match.kind.name.lower()
    print(f"keystead: matched {match.url} ({match.entry.username}) by {kind}", file=sys.stderr)
    sys.stdout.write(match.entry.password + "\n")


@passwords.command("list")
@click.option("--search", default=None, help="Only entries whose name, URL or username has TEXT")
@click.option(
    "--type",
    "kind",
    type=click.Choice(("login", "note", "card", "identity", "ssh-key")),
    default=None,
    help="Only items of this type",
)
@click.option(
    "--sync/--no-sync",
    "sync_first",
    default=True,
    show_default=True,
    help="Sync first when the service is reachable",
)
@json_option
def list_(search: str | None, kind: str | None, sync_first: bool, json_out: bool) -> None:
    """Entries without their secrets; '!' marks one that had a conflicting edit."""
    with _vault(online=sync_first) as vault:
        entries = vault.entries()
    if kind is not None:
        entries = [e for e in entries if e.type == kind]
    if search:
        needle = search.casefold()
        entries = [
            e for e in entries if any(needle in f.casefold() for f in (e.name, e.url, e.username))
        ]
    rows = [
        {
            "id": e.id,
            "type": e.type,
            "name": e.name,
            "url": e.url,
            "username": e.username,
            "folder": e.folder,
            "conflict": e.had_conflict,
            "updated": e.updated,
        }
        for e in entries
    ]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        mark = "!" if r["conflict"] else " "
        where = r["url"] if r["type"] == "login" else f"({r['type']})"
        print(f"{mark} {r['name']}\t{where}\t{r['username']}")
    if any(r["conflict"] for r in rows):
        print(
            "! = two devices edited this entry at once; the other value is in its history "
            "('get --json'); 'edit --resolved' clears the mark",
            file=sys.stderr,
        )


@passwords.command("edit")
@click.argument("url")
@click.option("--username", "-u", required=True)
@click.option(
    "--password", "new_password", is_flag=True, help="Read a new password from stdin or a prompt"
)
@click.option("--generate", is_flag=True, help="Generate a new password")
@click.option("--length", type=int, default=None)
@click.option("--words", type=int, default=None)
@click.option("--new-url", default=None)
@click.option("--new-username", default=None)
@click.option("--name", default=None)
@click.option("--notes", default=None)
@click.option("--resolved", is_flag=True, help="Clear the conflict mark")
def edit(
    url: str,
    username: str,
    new_password: bool,
    generate: bool,
    length: int | None,
    words: int | None,
    new_url: str | None,
    new_username: str | None,
    name: str | None,
    notes: str | None,
    resolved: bool,
) -> None:
    """Change an entry; a replaced password is kept in its history."""
    from ._vault import now_ms

    if new_password and generate:
        die("--password and --generate exclude each other")
    changes: dict[str, Any] = {}
    if new_password:
        changes["password"] = _read_secret("New password")
    if generate:
        changes["password"] = _generated(length, words)
    for field, value in (
        ("url", new_url),
        ("username", new_username),
        ("name", name),
        ("notes", notes),
    ):
        if value is not None:
            changes[field] = value
    if resolved:
        changes["had_conflict"] = False
    if not changes:
        die("nothing to change")
    with _vault(online=True) as vault:
        match = vault.one(url, username)  # the newest local value, queued writes first
        _report(vault.write(match.entry.edit(now_ms(), **changes)), "changed")


@passwords.command("rm")
@click.argument("url")
@click.option("--username", "-u", required=True)
def rm(url: str, username: str) -> None:
    """Remove an entry (on every device, at the next sync)."""
    from ._vault import now_ms

    with _vault(online=True) as vault:
        match = vault.one(url, username)
        entry = match.entry.edit(now_ms())
        _report(vault.write(entry, deleted=True), "removed")


@passwords.command("sync")
@json_option
def sync(json_out: bool) -> None:
    """Push edits queued offline (merging conflicts), fetch the rest."""
    with _vault() as vault:
        r = vault.sync()
    if json_out:
        print_json({"fetched": r.fetched, "pushed": r.pushed, "conflicts": r.conflicts})
    else:
        print(f"synced: {r.pushed} pushed, {r.fetched} fetched, {len(r.conflicts)} merged")


@passwords.command("generate")
@click.option("--length", type=int, default=None, help="Characters (default 20)")
@click.option("--words", type=int, default=None, help="A passphrase of N words instead")
def generate(length: int | None, words: int | None) -> None:
    """Print a random password (or with --words, an EFF-wordlist passphrase)."""
    if length is not None and words is not None:
        die("--length and --words exclude each other")
    print(_generated(length, words))


passwords.add_command(show)
passwords.add_command(import_)
passwords.add_command(export)
passwords.add_command(browser)
