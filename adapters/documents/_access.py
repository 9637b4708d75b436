"""Documents on top of the core: labels are shared keys, opening goes through grants.

A label ``L`` of an account is a core shared key under an opaque id,
``documents/`` + 32 hex digits (:mod:`keystead.core.names`): the name ``L``
itself is only in the account's encrypted name record (and in the headers of
the documents protected under it), never in the chain or at the service. Protecting
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

from keystead.core.address import Address
from keystead.core.errors import DecryptionFailed, Forbidden, FormatError, NotFound

from ._document import open_to_path, protect_to_path
from ._header import Header
from ._leftovers import Journal
from ._stream import DATA_KEY_SIZE, Progress

if TYPE_CHECKING:
    from keystead.core import ChainState, Device

__all__ = [
    "COLLECTION",
    "DEFAULT_LABEL",
    "OpenedDocument",
    "check_label",
    "data_key_for",
    "find_label",
    "is_label_key",
    "label_names",
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


def check_label(label: str) -> str:
    """``label`` if it can name a label; ``FormatError`` otherwise."""
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
        raise FormatError(
            f"invalid label {label!r}: use lowercase letters, digits and _ . / - "
            "(starting with a letter or _), at most 118 characters"
        )
    return label


def is_label_key(key: str) -> bool:
    """Whether a shared-key name is a documents label's (opaque) key."""
    from keystead.core.names import is_opaque

    return is_opaque(key, _PREFIX)


def find_label(device: Device, label: str, *, sync: bool = True) -> str | None:
    """The key of this account's ``label`` (through the name record); None if no such label."""
    from keystead.core.names import resolve_collection

    return resolve_collection(device, _PREFIX, check_label(label), sync=sync)


def label_names(device: Device, *, sync: bool = True) -> dict[str, str]:
    """Label key -> label name, for every label of this account (an unnamed key shows as
    its id: a record this device cannot read yet)."""
    from keystead.core.names import read_names

    names = read_names(device, sync=sync)
    return {
        key: names.name_of(key) or key[len(_PREFIX) :]
        for key in device.chain(refresh=False).collections
        if is_label_key(key)
    }


def owner_of(header: Header) -> tuple[str, str]:
    """(account, service URL) of a document's owner, checking the header agrees with itself."""
    owner = Address.parse(header.owner)
    if not owner.same_service(header.service_url):
        raise FormatError("document owner and service URL name different hosts")
    return owner.name, header.service_url


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
    from keystead.core import seal_to_key
    from keystead.core.names import name_collection

    device.chain()
    key = find_label(device, label)
    if key is None:
        if device.secrets is None:
            raise Forbidden(f"label {label!r} does not exist; an admin device can create it")
        key = name_collection(device, _PREFIX, label, kind="keys")
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
    from keystead.core.sealed import SealedKey

    account, server = owner_of(header)
    record = SealedKey.from_bytes(header.sealed_key)
    # The header's label is the owner's name for it, for people; the key to ask for is the
    # opaque one the data key is sealed to (the name is never sent to a service).
    key = record.key
    if not is_label_key(key) or record.owner != account:
        raise FormatError("the document's key is not a documents label of its owner")
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
    journal: Journal | None = None,
) -> OpenedDocument:
    """Open ``src`` into ``out``; ``out`` appears only once every chunk authenticated."""
    header = open_to_path(
        src,
        out,
        lambda h: data_key_for(device, h),
        progress=progress,
        overwrite=overwrite,
        durable=durable,
        journal=journal,
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
