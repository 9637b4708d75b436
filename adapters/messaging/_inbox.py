"""Reading: fetch new spool entries, verify each, open them all in one re-encryption batch.

Every entry ends as a stored :class:`Message`: verified with its text, or
refused with a reason and no text. Nothing unverified is ever shown as text.
Costs for N new messages: one chain fetch per sender account, N Ed25519
verifications, one re-encryption request per key (the ``messages`` key, each
group key), N AEAD opens.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from keystead.core import (
    ChainState,
    Device,
    Forbidden,
    InvalidSignature,
    KeysteadError,
    NotFound,
    UnsupportedVersion,
    open_sealed_to_key,
)

from . import _labels
from ._envelope import OLD_FORMAT, Envelope, Wire, open_body, parse_wire, verify_envelope
from ._peers import Peers
from ._send import group_members
from ._store import Message, MessageStore, record

__all__ = ["PAGE", "fetch_new", "process"]

PAGE = 1000

# Reasons a message is refused: short, for the person reading the inbox.
MALFORMED = "malformed message"
FORGED = "the signature does not verify (forged or altered)"
UNKNOWN_DEVICE = "the sender's chain has no such device"
REMOVED_DEVICE = "the sender's device has been removed"
WRONG_POSTER = "posted by another device than the one that signed it"
NOT_FOR_ME = "addressed to another account"
REPLAY = "replay: this message id was already received"
UNDECRYPTABLE = "cannot be decrypted"
NOT_MEMBER = "the sender is not a member of the group"


@dataclass(frozen=True)
class SpoolEntry:
    id: int
    sender: str
    body: bytes
    created: int


def fetch_new(
    device: Device, store: MessageStore, *, wait: int = 0, peers: Peers | None = None
) -> list[Message]:
    """Fetch every spool entry after this device's cursor (long-polling ``wait`` seconds for
    the first), process them, store them; returns the new messages."""
    from ._send import _caps

    channel = _caps(device).channel(_labels.CHANNEL)
    after, entries = store.cursor(), []
    while True:
        rows = channel.read(after=after, limit=PAGE, wait=wait)
        page = [SpoolEntry(m.id, m.sender, m.body, m.created) for m in rows]
        entries += page
        if page:
            after = page[-1].id
        if len(rows) < PAGE:
            break
        wait = 0
    if not entries:
        return []
    records, tags = process(device, store, entries, peers or Peers(device))
    return store.add(records, tags, after)


def process(
    device: Device, store: MessageStore, entries: list[SpoolEntry], peers: Peers
) -> tuple[list[dict[str, Any]], list[str]]:
    """Verify and open ``entries``; returns records to store and the replay tags to mark."""
    out: dict[int, dict[str, Any]] = {}
    verified: list[tuple[SpoolEntry, Wire, Envelope, str]] = []

    def refuse(
        e: SpoolEntry, reason: str, env: Envelope | None = None, wire: Wire | None = None
    ) -> None:
        out[e.id] = record(
            spool=e.id,
            received=e.created,
            verified=False,
            reason=reason,
            id=env.id if env else None,
            time=env.time if env else None,
            sender=wire.sender if wire else None,
            device=wire.device if wire else None,
            group=peers.group_label(env.group) if env and env.group else None,
        )

    wires: list[tuple[SpoolEntry, Wire]] = []
    for e in entries:
        try:
            wires.append((e, parse_wire(e.body)))
        except UnsupportedVersion as err:
            refuse(e, OLD_FORMAT if str(err) == OLD_FORMAT else MALFORMED)
        except KeysteadError:
            refuse(e, MALFORMED)

    chains: dict[str, ChainState | str] = {}
    for sender in sorted({w.sender for _, w in wires}):
        try:
            chains[sender] = peers.chain(sender)
        except KeysteadError as err:
            chains[sender] = f"cannot verify the sender's chain: {err}"

    tags_in_batch: set[str] = set()
    candidates: list[tuple[SpoolEntry, Wire, Envelope, str]] = []
    for e, w in wires:
        chain = chains[w.sender]
        if isinstance(chain, str):
            refuse(e, chain, wire=w)
            continue
        dev = chain.devices.get(w.device)
        if dev is None:
            refuse(e, UNKNOWN_DEVICE, wire=w)
            continue
        if not dev.live:
            refuse(e, REMOVED_DEVICE, wire=w)
            continue
        try:
            env = verify_envelope(w, dev.signing_key)
        except InvalidSignature:
            refuse(e, FORGED, wire=w)
            continue
        except KeysteadError:
            refuse(e, MALFORMED, wire=w)
            continue
        name, server = peers.locate(w.sender)
        if server is None and e.sender != f"{name}/{w.device}":
            refuse(e, WRONG_POSTER, env, w)
            continue
        if env.to != peers.me:
            refuse(e, NOT_FOR_ME, env, w)
            continue
        candidates.append((e, w, env, store.tag(env.sender, env.id)))
    seen = store.seen(t for *_, t in candidates)
    for e, w, env, tag in candidates:
        if tag in seen or tag in tags_in_batch:
            refuse(e, REPLAY, env, w)
            continue
        tags_in_batch.add(tag)
        verified.append((e, w, env, tag))

    keys = _open_keys(device, peers, [env for _, _, env, _ in verified])
    members = _group_members(device, peers, {env.group for _, _, env, _ in verified if env.group})
    accepted: list[str] = []
    for e, w, env, tag in verified:
        key = keys.get((str(env.group) if env.group else None, env.sealed_key))
        if isinstance(key, str):
            refuse(e, key, env, w)
            continue
        if env.group is not None:
            roster = members[str(env.group)]
            if isinstance(roster, str):
                refuse(e, roster, env, w)
                continue
            if env.sender != env.group.owner and env.sender not in roster:
                refuse(e, NOT_MEMBER, env, w)
                continue
        try:
            text = open_body(key, env.body, env.ad) if key is not None else None
        except KeysteadError:
            text = None
        if text is None:
            refuse(e, UNDECRYPTABLE, env, w)
            continue
        out[e.id] = record(
            spool=e.id,
            id=env.id,
            sender=env.sender,
            device=env.device,
            time=env.time,
            received=e.created,
            verified=True,
            text=text,
            group=peers.group_label(env.group) if env.group else None,
        )
        accepted.append(tag)
    return [out[e.id] for e in entries], accepted


def _open_keys(
    device: Device, peers: Peers, envelopes: list[Envelope]
) -> dict[tuple[str | None, bytes], bytes | str]:
    """Message keys by (group, sealed key): one re-encryption batch per key, identical sealed
    keys opened once. A value that is a string is why that key could not be opened."""
    batches: dict[str | None, dict[bytes, None]] = defaultdict(dict)  # ordered sets
    groups = {str(env.group): env.group for env in envelopes if env.group}
    for env in envelopes:
        batches[str(env.group) if env.group else None][env.sealed_key] = None
    out: dict[tuple[str | None, bytes], bytes | str] = {}
    for gref, unique_keys in batches.items():
        sealed = list(unique_keys)
        if gref is None:
            owner, key, server = peers.chain(peers.me), _labels.CHANNEL, None
        else:
            g = groups[gref]
            try:
                owner = peers.chain(g.owner)
            except KeysteadError as err:
                out.update(
                    {(gref, s): f"cannot verify the group owner's chain: {err}" for s in sealed}
                )
                continue
            key, server = g.key, peers.locate(g.owner)[1]
        opened = _open_batch(device, owner, key, sealed, server)
        out.update({(gref, s): k for s, k in zip(sealed, opened, strict=True)})
    return out


def _open_batch(
    device: Device, owner: ChainState, key: str, sealed: list[bytes], server: str | None
) -> list[bytes | str]:
    """One batch; if one sealed key spoils it (a bad capsule from a signed but hostile
    sender), open them one by one so only that message is refused."""
    try:
        opened = open_sealed_to_key(device, owner, key, sealed, context="messaging", server=server)
        return [k if len(k) == 32 else UNDECRYPTABLE for k in opened]
    except Forbidden as err:  # removed device, revoked membership: every one refused
        return [f"refused by the service: {err}"] * len(sealed)
    except NotFound as err:
        return [f"no such key: {err}"] * len(sealed)
    except KeysteadError:
        if len(sealed) == 1:
            return [UNDECRYPTABLE]
    return [_open_batch(device, owner, key, [s], server)[0] for s in sealed]


def _group_members(device: Device, peers: Peers, groups: set[Any]) -> dict[str, list[str] | str]:
    out: dict[str, list[str] | str] = {}
    for g in groups:
        try:
            out[str(g)] = group_members(device, g, peers)
        except (Forbidden, NotFound) as err:
            out[str(g)] = f"cannot read the group's members: {err}"
    return out
