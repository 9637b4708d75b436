"""``keystead doc``: protect, open, inspect, grant, revoke, list labels, read the audit trail.

Every failure is one line on stderr and exit status 1: bad or tampered files,
refused grants and file-system errors alike. Nothing but a fully
authenticated document ever appears at the output path.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from keystead.core.cli import die, iso_time, json_option, open_device, print_json
from keystead.core.errors import DecryptionFailed, KeysteadError
from keystead.core.text import printable

if TYPE_CHECKING:
    from keystead.core import Device

    from ._header import Header
    from ._leftovers import Journal

__all__ = ["doc"]

force_option = click.option("--force", is_flag=True, help="Replace OUT if it exists")
_TAMPERED = "does not authenticate: it is damaged, truncated or was altered"


@click.group("doc")
def doc() -> None:
    """Protected documents: protect, open, info, grant, revoke, labels, audit."""
    # A 'doc open' killed with SIGKILL left its temporary plaintext: remove it now.
    for path in _journal().sweep():
        print(f"keystead: removed {path}, left by an interrupted 'doc open'", file=sys.stderr)


def _journal() -> Journal:
    from keystead.core.cli import home

    from ._leftovers import Journal

    return Journal(home().path / "documents" / "opening")


@contextmanager
def _file_errors(name: str | os.PathLike[str]) -> Iterator[None]:
    """File-system and authentication failures as one line naming the document."""
    try:
        yield
    except DecryptionFailed:
        die(f"{os.fspath(name)} {_TAMPERED}")
    except FileExistsError as e:
        die(
            f"{e.filename}: already exists (use --force or -o)"
            if e.filename
            else f"{e} (use --force or -o)"
        )
    except OSError as e:
        die(f"{e.filename or os.fspath(name)}: {e.strerror or e}")


@doc.command("protect")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--label", "-l", default=None, help="The label to protect under (default: default)")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: FILE.kst)",
)
@force_option
def protect(file: Path, label: str | None, out: Path | None, force: bool) -> None:
    """Encrypt FILE to one of this account's labels; grantees of the label can open it."""
    from ._access import DEFAULT_LABEL, protect_document
    from ._progress import terminal_progress

    out = out or file.with_name(file.name + ".kst")
    with _file_errors(file):
        total = file.stat().st_size
        with open_device() as dev, terminal_progress(total, "protect") as progress:
            header, size = protect_document(
                dev, file, out, label=label or DEFAULT_LABEL, progress=progress, overwrite=force
            )
    print(
        f"protected {file} -> {out} (label {header.label!r}, {size} bytes, "
        f"id {header.document_id.hex()})",
        file=sys.stderr,
    )


def _default_open_target(file: Path) -> Path:
    if file.suffix != ".kst" or file.stem in ("", "."):
        die(f"{file} does not end in .kst: say where to write with -o")
    return file.with_suffix("")


@doc.command("open")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: FILE without .kst)",
)
@force_option
def open_(file: Path, out: Path | None, force: bool) -> None:
    """Decrypt FILE.kst through this device's grant (recorded in the owner's audit trail)."""
    from ._access import open_document
    from ._header import read_header
    from ._leftovers import exit_on_sigterm
    from ._progress import terminal_progress

    out = out or _default_open_target(file)
    with _file_errors(file), exit_on_sigterm():
        with open(file, "rb") as f:
            body = os.fstat(f.fileno()).st_size - len(read_header(f).to_bytes())
        # The service, not this device, decides about removed devices: its refusal is audited.
        with open_device(refresh_chain=False) as dev, terminal_progress(body, "open") as progress:
            opened = open_document(
                dev, file, out, progress=progress, overwrite=force, journal=_journal()
            )
    print(
        f"opened {file} -> {opened.path} (owner {opened.header.owner}, "
        f"label {opened.header.label!r})",
        file=sys.stderr,
    )


def _plaintext_size(header: Header, file_size: int) -> int | None:
    """What the body would decrypt to, from the sizes alone; None if they cannot fit."""
    from ._stream import TAG_SIZE

    body = file_size - len(header.to_bytes())
    enc = header.chunk_size + TAG_SIZE
    chunks = max(1, -(-body // enc))
    size = body - chunks * TAG_SIZE
    return size if size >= 0 else None


@doc.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def info(file: Path, json_out: bool) -> None:
    """Show what FILE.kst's header claims. Decrypts nothing; needs no device."""
    from ._header import read_header

    with _file_errors(file), open(file, "rb") as f:
        header = read_header(f)
        file_size = os.fstat(f.fileno()).st_size
    data = {
        "owner": header.owner,
        "label": header.label,
        "service": header.service_url,
        "document_id": header.document_id.hex(),
        "created": iso_time(header.created),
        "size": _plaintext_size(header, file_size),
        "file_size": file_size,
        "chunk_size": header.chunk_size,
    }
    if json_out:
        print_json(data)
        return
    for k, v in data.items():
        print(f"{k:<12} {'?' if v is None else printable(v, 2100)}")
    print("(claims of the header: only opening the document authenticates them)", file=sys.stderr)


def _grantee(dev: Device, account: str) -> str:
    """An account name; ``name@host[:port]`` is accepted for this device's service only."""
    from keystead.core.address import Address

    address = Address.parse(account, default=dev.server)
    if not address.same_service(dev.server):
        die(f"{address}: grants to accounts of another service are not supported yet")
    return address.name


@doc.command("grant")
@click.argument("label")
@click.argument("account")
@click.option(
    "--expires",
    default=None,
    help="When the grant ends: a duration (12h, 7d, 2w) or an ISO date/time (UTC)",
)
def grant(label: str, account: str, expires: str | None) -> None:
    """Let ACCOUNT's devices open documents under LABEL (admin device)."""
    from keystead.core import grant_account

    from ._access import check_label, find_label, parse_expires

    check_label(label)
    when = None if expires is None else parse_expires(expires, now=time.time())
    with open_device() as dev:
        name = _grantee(dev, account)
        key = find_label(dev, label)
        if key is None:
            die(f"no label {label!r} (protect a document under it first)")
        grant_account(dev, key, name, expires=when)
    until = f" until {iso_time(when)}" if when is not None else ""
    print(f"granted {label!r} to {name}{until}", file=sys.stderr)


@doc.command("revoke")
@click.argument("label")
@click.argument("account")
def revoke(label: str, account: str) -> None:
    """Delete ACCOUNT's grant to LABEL: its next open is refused (admin device)."""
    from keystead.core import NotFound, revoke_account

    from ._access import find_label

    with open_device() as dev:
        name = _grantee(dev, account)
        key = find_label(dev, label)
        if key is None:
            die(f"no label {label!r}")
        try:
            revoke_account(dev, key, name)
        except NotFound:
            die(f"{name} holds no grant to {label!r}")
    print(f"revoked {label!r} from {name}", file=sys.stderr)


@doc.command("labels")
@json_option
def labels(json_out: bool) -> None:
    """List this account's labels and who may open them (admin device)."""
    from keystead.core import list_grants

    from ._access import is_label_key, label_names

    now = int(time.time())
    with open_device() as dev:
        keys = label_names(dev)
        found: dict[str, list[dict[str, Any]]] = {lbl: [] for lbl in keys.values()}
        for g in list_grants(dev):
            if not is_label_key(g.key) or g.target_kind != "account":
                continue
            lbl = keys.get(g.key, g.key)
            found.setdefault(lbl, []).append(
                {
                    "account": g.target,
                    "own": g.target == dev.account,
                    "expires": None if g.expires is None else iso_time(g.expires),
                    "expired": g.expires is not None and g.expires <= now,
                }
            )
    if json_out:
        print_json([{"label": k, "grantees": v} for k, v in sorted(found.items())])
        return
    for lbl, grantees in sorted(found.items()):
        others = [g for g in grantees if not g["own"]]
        names = (
            ", ".join(
                g["account"]
                + (
                    " (expired)"
                    if g["expired"]
                    else f" (until {g['expires']})"
                    if g["expires"]
                    else ""
                )
                for g in others
            )
            or "-"
        )
        print(printable(f"{lbl:<20} {names}", 4000))


@doc.command("audit")
@click.option("--label", "-l", default=None, help="Only this label")
@click.option(
    "--after",
    type=click.IntRange(0),
    default=0,
    help="Only records after this id (page on with the id printed last)",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=1000,
    show_default=True,
    help="At most this many records",
)
@click.option("--grantee", default=None, help="Only requests from this account")
@click.option(
    "--outcome",
    type=click.Choice(["allowed", "refused"]),
    default=None,
    help="Only allowed or only refused requests",
)
@json_option
def audit(
    label: str | None,
    after: int,
    limit: int,
    grantee: str | None,
    outcome: str | None,
    json_out: bool,
) -> None:
    """Who opened which document, from which device, when; allowed or refused (admin).

    Oldest first; ``capsule`` is the digest of what was really opened (the document id is
    what the requester claimed). Refusals of accounts without a grant are counted per hour."""
    from keystead.core.audit import AuditPage, read_audit

    from ._access import COLLECTION, find_label, is_label_key, label_names

    with open_device() as dev:
        # A label this account never had: no records (its name alone reaches no service).
        key = None if label is None else find_label(dev, label) or ""
        who = None if grantee is None else _grantee(dev, grantee)
        page = (
            AuditPage([], None)
            if key == ""
            else read_audit(
                dev,
                prefix=key or COLLECTION + "/",
                after=after,
                limit=limit,
                grantee=who,
                outcome=outcome,
            )
        )
        records = [r for r in page.records if is_label_key(r.key) and (key is None or r.key == key)]
        labels_of = label_names(dev)
        names = _device_names(dev, {r.account for r in records})
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "time": iso_time(r.time),
            "label": labels_of.get(r.key, r.key),
            "document_id": r.context,
            "capsule_sha256": r.capsule or None,
            "account": r.account,
            "device": r.device,
            "device_name": names.get(r.device),
            "allowed": r.allowed,
            "reason": r.reason,
            "count": r.count,
        }
        for r in records
    ]
    if json_out:
        print_json(rows)
    for r in [] if json_out else rows:
        verdict = "allowed" if r["allowed"] else f"refused ({r['reason']})"
        if r["count"] > 1:
            verdict += f" x{r['count']}"
        dev_name = f" ({r['device_name']})" if r["device_name"] else ""
        capsule = f" capsule {r['capsule_sha256'][:16]}" if r["capsule_sha256"] else ""
        print(
            printable(
                f"{r['id']:>6}  {r['time']}  {verdict:<22} {r['label']:<12} "
                f"{r['document_id'] or '-'}{capsule}  {r['account']} "
                f"{r['device'][:16]}{dev_name}",
                1000,
            )
        )
    if page.next_after is not None:
        print(f"more records: --after {page.next_after}", file=sys.stderr)


def _device_names(dev: Device, accounts: set[str]) -> dict[str, str]:
    """Device ids to names from the verified chains of the accounts in the log."""
    out: dict[str, str] = {}
    for account in sorted(accounts):
        try:
            state = dev.chain(refresh=False) if account == dev.account else dev.peer_chain(account)
        except KeysteadError:  # an account gone from the service: ids alone still say enough
            continue
        out.update({d.id: d.name for d in state.devices.values()})
    return out
