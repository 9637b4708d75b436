"""KeePass and KeePassXC databases (``.kdbx``, KDBX 3.1 and 4), read through ``pykeepass``.

Each entry outside the recycle bin becomes a login: title, user name,
password, URL, notes and times; the group path below the root becomes the
folder; the ``otp`` attribute (KeePassXC's TOTP) the otpauth URI;
``KP2A_URL*`` attributes (KeePassXC's additional URLs) the other URLs; every
other custom attribute a custom field (``hidden`` when protected). Earlier
passwords from the entry's history become password history. The entry UUID,
tags, icon, expiry and auto-type sequence and window are kept in ``extra`` as
``keepass.*``. Attachments
have no place in the vault: each is named and refused (or, with
``--skip-unsupported``, listed as left out).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from .._entry import MAX_TIME, Entry, HistoryItem
from .._errors import MalformedFile, WrongFilePassword
from ._common import NewId, extras, new_uuid
from ._loss import Skips
from ._secrets import FileSecrets

__all__ = ["parse_kdbx"]

NAME = "kdbx"
_EXTRA_URL = "KP2A_URL"


def _ms(when: datetime | None, default: int) -> int:
    if when is None:
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(MAX_TIME, max(0, int(when.timestamp() * 1000)))


def _open(data: bytes, secrets: FileSecrets) -> Any:
    from pykeepass import PyKeePass
    from pykeepass.exceptions import CredentialsError, HeaderChecksumError, PayloadChecksumError

    if not data.startswith(b"\x03\xd9\xa2\x9a"):
        raise MalformedFile(NAME, 1, "not a KeePass database (no KDBX signature)")
    password = secrets.password() or None  # with a key file, the password may be empty
    keyfile = None if secrets.key_file is None else io.BytesIO(secrets.key_file)
    try:
        return PyKeePass(io.BytesIO(data), password=password, keyfile=keyfile)
    except (CredentialsError, HeaderChecksumError, PayloadChecksumError):
        raise WrongFilePassword("the password or key file does not open this database") from None
    except Exception as e:  # noqa: BLE001 (pykeepass raises construct's and lxml's errors)
        problem = f"not a readable KDBX 3.1/4 database ({type(e).__name__})"
        raise MalformedFile(NAME, 1, problem) from None


def _folder(entry: Any) -> str:
    path = entry.group.path if entry.group is not None else []
    return "/".join(p or "" for p in path if p is not None)


def _entry(e: Any, label: str, now: int, new_id: NewId, skips: Skips) -> Entry:
    props = e.custom_properties
    urls = [v for k, v in sorted(props.items()) if k.startswith(_EXTRA_URL) and v]
    fields = tuple(
        (k, v or "", "hidden" if e.is_custom_property_protected(k) else "text")
        for k, v in props.items()
        if not k.startswith(_EXTRA_URL)
    )
    for att in e.attachments:
        skips.drop(NAME, label, f"attachment {att.filename!r}", "attachments are not kept")
    updated = _ms(e.mtime, now)
    history = tuple(
        HistoryItem("password", h.password or "", _ms(h.mtime, 0))
        for h in e.history
        if (h.password or "") != (e.password or "")
    )
    kept = {"keepass__uuid": str(e.uuid), "keepass__icon": str(e.icon or "0")}
    if e.tags:
        kept["keepass__tags"] = ";".join(e.tags)
    if e.expires:
        kept["keepass__expires"] = str(_ms(e.expiry_time, 0))
    for key, value in (("sequence", e.autotype_sequence), ("window", e.autotype_window)):
        if value:
            kept["keepass__autotype_" + key] = value
    return Entry(
        id=new_id(),
        name=e.title or "",
        url=e.url or "",
        other_urls=tuple(urls),
        username=e.username or "",
        password=e.password or "",
        notes=e.notes or "",
        otpauth=e.otp or None,
        folder=_folder(e),
        fields=fields,
        created=_ms(e.ctime, updated),
        updated=updated,
        history=history,
        extra=extras(**kept),
    )


def parse_kdbx(
    data: bytes,
    *,
    now: int,
    new_id: NewId = new_uuid,
    skips: Skips | None = None,
    secrets: FileSecrets | None = None,
) -> list[Entry]:
    """Every entry outside the recycle bin; WrongFilePassword if the password does not open it."""
    skips = skips or Skips()
    kp = _open(data, secrets or FileSecrets())
    trash = kp.recyclebin_group
    out = []
    for e in kp.entries:
        if e.is_a_history_entry:
            continue
        if trash is not None and any(g.uuid == trash.uuid for g in _ancestors(e)):
            continue
        folder = _folder(e)
        label = repr(f"{folder}/{e.title or ''}" if folder else e.title or "")
        out.append(_entry(e, label, now, new_id, skips))
    return out


def _ancestors(e: Any) -> list[Any]:
    out, g = [], e.group
    while g is not None:
        out.append(g)
        g = g.parentgroup
    return out
