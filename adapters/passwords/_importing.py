"""Imports that can be rerun: ids derived from the source, matching, batches.

An imported entry's item id is derived from the file's own id for it (a
Bitwarden item id, a Firefox guid, a KeePass UUID...) or, where the file has
none, from its content, so importing the same file again, or retrying after
the service's answer was lost, writes nothing twice. An entry also counts as
present when the vault already holds one with the same URL, username and
password (same type, name, notes and details for items without a login).
Entries go to the service in batches, each all-or-nothing: an import that
stops half-way is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ._entry import Entry

__all__ = ["BATCH", "BATCH_BYTES", "Plan", "batches", "match_key", "plan_import", "stable_ids"]

BATCH = 1000
"""Entries per request: well under the service's per-request item limit."""
BATCH_BYTES = 8 * 1024 * 1024
"""Plaintext bytes per request: sealed and base64-encoded, well under its body limit."""
_NAMESPACE = uuid.UUID("6f1c1f9e-53a4-5c2b-9a3e-2d1c0b9a8e7f")
SOURCE_IDS = (
    "bitwarden.id",
    "firefox.guid",
    "keepass.uuid",
    "onepassword.uuid",
    "lastpass.id",
)


def _source_key(e: Entry) -> str | None:
    x = e.extras
    for key in SOURCE_IDS:
        if x.get(key):
            return f"{key}={x[key]}"
    return None


def match_key(e: Entry) -> str:
    """What makes two entries the same for an import that has no source id to go by."""
    if e.type == "login":
        parts: list[object] = ["login", e.url, e.username, e.password]
    else:
        parts = [e.type, e.name, e.notes, [list(d) for d in e.details]]
    return json.dumps(parts, ensure_ascii=False)


def stable_ids(entries: Iterable[Entry]) -> list[Entry]:
    """Entries with item ids that depend only on the source (or content), never on chance."""
    out = []
    for e in entries:
        key = _source_key(e)
        if key is None:
            body = json.dumps([match_key(e), e.name, e.notes], ensure_ascii=False)
            key = "content=" + hashlib.sha256(body.encode()).hexdigest()
        out.append(e.with_id(str(uuid.uuid5(_NAMESPACE, key))))
    return out


@dataclass(frozen=True)
class Plan:
    """What an import writes (``new``) and what it finds already in the vault (``present``)."""

    new: list[Entry]
    present: int


def plan_import(
    entries: Sequence[Entry],
    live_ids: set[str],
    live_entries: Callable[[], Iterable[Entry]],
) -> Plan:
    """Drop entries already in the vault (same id, else same :func:`match_key`) or repeated
    in the file. ``live_entries`` is called only when some id is not already there."""
    todo = [e for e in entries if e.id not in live_ids]
    if not todo:
        return Plan([], len(entries))
    keys = {match_key(e) for e in live_entries()} if live_ids else set()
    new, seen = [], set()
    for e in todo:
        k = match_key(e)
        if k in keys or e.id in seen:
            continue
        seen.add(e.id)
        keys.add(k)
        new.append(e)
    return Plan(new, len(entries) - len(new))


def batches(
    entries: Sequence[Entry], size: int = BATCH, max_bytes: int = BATCH_BYTES
) -> Iterator[list[tuple[Entry, bytes]]]:
    """Entries with their item bytes, in requests of at most ``size`` entries and
    ``max_bytes`` bytes (an entry larger than that goes alone)."""
    chunk: list[tuple[Entry, bytes]] = []
    total = 0
    for e in entries:
        data = e.to_bytes()
        if chunk and (len(chunk) >= size or total + len(data) > max_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append((e, data))
        total += len(data)
    if chunk:
        yield chunk
