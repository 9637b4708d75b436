"""Documents on top of the core: labels are shared keys, opening goes through grants.

A label ``L`` of an account is the core shared key ``documents/L``. Protecting
seals a fresh data key to the label's public key (``seal_to_key``; any device of
the owner can, an admin creates the label on first use). Opening sends only the
capsule to the owner's service (``open_sealed_to_key``), which re-encrypts it
for a live device of a grantee and audits the open with the document id as
context. This module does no printing; the CLI (``cli.py``) does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from keystead.core.errors import DecryptionFailed, Forbidden, FormatError, NotFound

from ._document import open_to_path, protect_to_path
from ._header import Header
from ._stream import DATA_KEY_SIZE, Progress

if TYPE_CHECKING:
    from keystead.core import ChainState, Device

__all__ = [
    "COLLECTION",
    "DEFAULT_LABEL",
    "OpenedDocument",
    "data_key_for",
    "label_key",
    "label_of",
    "open_document",
    "owner_of",
    "parse_expires",
    "protect_document",
]

#: The collection (device scope) of the adapter; label keys are named under it.
COLLECTION = "documents"
DEFAULT_LABEL = "default"
_PREFIX = COLLECTION + "/"
_LABEL_RE = re.compile(r"[a-z_][a-z0-9_./-]{0,117}")  # a collection name once prefixed


def label_key(label: str) -> str:
    """The core shared-key name of ``label``; ``FormatError`` for a label that cannot be one."""
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
        raise FormatError(
            f"invalid label {label!r}: use lowercase letters, digits and _ . / - "
            "(starting with a letter or _), at most 118 characters"
        )
    return _PREFIX + label


def label_of(key: str) -> str | None:
    """The label of a shared-key name, or None for keys that are not documents labels."""
    return key[len(_PREFIX) :] if key.startswith(_PREFIX) else None


def owner_of(header: Header) -> tuple[str, str]:
    """(account, service URL) of a document's owner, checking the header agrees with itself."""
    name, _, host = header.owner.rpartition("@")
    if urlsplit(header.service_url).netloc.lower() != host.lower():
        raise FormatError("document owner and service URL name different hosts")
    return name, header.service_url


def _same_server(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def protect_document(
    device: Device,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    label: str = DEFAULT_LABEL,
    progress: Progress | None = None,
    overwrite: bool = False,
    durable: bool = False,
    random: Callable[[int], bytes] = os.urandom,
) -> tuple[Header, int]:
    """Protect ``src`` into ``out`` under this account's ``label``; (header, plaintext size).

    A missing label is created, which needs an admin device; sealing to an
    existing label needs only its public key, so any device of the account can.
    """
    from keystead.core import create_shared_key, seal_to_key

    key = label_key(label)
    state = device.chain()
    if key not in state.collections:
        if device.secrets is None:
            raise Forbidden(f"label {label!r} does not exist; an admin device can create it")
        create_shared_key(device, key)
        state = device.chain()
    data_key = random(DATA_KEY_SIZE)
    sealed = seal_to_key(state, key, data_key)
    header = Header.new(
        owner=device.address,
        label=label,
        service_url=device.server.rstrip("/"),
        sealed_key=sealed,
    )
    size = protect_to_path(
        src, out, header, data_key, progress=progress, overwrite=overwrite, durable=durable
    )
    return header, size


def data_key_for(device: Device, header: Header) -> bytes:
    """The data key of ``header``'s document, through this device's grant (audited).

    The owner's admin devices decrypt locally; the owner's other devices need
    the documents scope; another account's devices need a live grant.
    """
    from keystead.core import open_sealed_to_key

    account, server = owner_of(header)
    key = label_key(header.label)
    own = account == device.account and _same_server(server, device.server)
    owner_chain: ChainState
    if own:
        owner_chain = device.chain()
        me = device.me(owner_chain)
        secrets = device.secrets
        holds = secrets is not None and key in secrets.epochs
        # Client-side: the service lets any live device of the account use the account's
        # own grant (see the report on the core change this wants).
        if not holds and COLLECTION not in me.scopes:
            raise Forbidden(f"this device does not have the {COLLECTION!r} scope")
    else:
        device.chain()  # newest own chain: a cfrag may target a new sharing key generation
        owner_chain = device.peer_chain(account, server)
    if key not in owner_chain.collections:
        raise NotFound(f"{header.owner} has no label {header.label!r}")
    [data_key] = open_sealed_to_key(
        device,
        owner_chain,
        key,
        [header.sealed_key],
        context=header.document_id.hex(),
        server=None if own else server,
    )
    if len(data_key) != DATA_KEY_SIZE:
        raise DecryptionFailed()
    return data_key


@dataclass(frozen=True)
class OpenedDocument:
    header: Header
    path: Path


def open_document(
    device: Device,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    durable: bool = False,
) -> OpenedDocument:
    """Open ``src`` into ``out``; ``out`` appears only once every chunk authenticated."""
    header = open_to_path(
        src,
        out,
        lambda h: data_key_for(device, h),
        progress=progress,
        overwrite=overwrite,
        durable=durable,
    )
    return OpenedDocument(header, Path(out))


_DURATION_RE = re.compile(r"([1-9][0-9]{0,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expires(text: str, *, now: float) -> int:
    """Unix seconds from a duration (``90s``, ``12h``, ``7d``, ``2w``) or an ISO date/time.

    A date or time without a zone is UTC; a date alone means its midnight. The
    result must lie after ``now``: an expiry already past is a mistake, not a grant.
    """
    text = text.strip()
    m = _DURATION_RE.fullmatch(text)
    if m:
        when = int(now) + int(m.group(1)) * _UNITS[m.group(2)]
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text else "x")
        except ValueError:
            raise FormatError(
                f"cannot read expiry {text!r}: use a duration like 7d or 12h, or an ISO date"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        when = int(parsed.timestamp())
    if when <= now:
        raise FormatError(f"expiry {text!r} is not in the future")
    return when
