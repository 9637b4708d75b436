"""The vault: password entries as items of the ``passwords`` collection.

Reads come from the device's local item cache (plus writes still queued
offline), through the lookup index, so ``get`` needs neither the network nor
a pass over every entry. Writes never lose an edit silently: a write the
service refuses as stale is merged with the newer version (:func:`merge`) and
written again; a write made offline is queued, and :meth:`Vault.sync` merges
it the same way if someone else changed the entry meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keystead.core import (
    Collection,
    Conflict,
    Device,
    FormatError,
    NetworkError,
    NotFound,
    Record,
    SyncResult,
    b64d,
    b64e,
    random_bytes,
)

from ._entry import Entry
from ._importing import BATCH, Plan, batches, plan_import
from ._index import Index, name_token, url_tokens
from ._match import Match, MatchKind, _split, find_matches
from ._merge import merge

__all__ = ["COLLECTION", "Ambiguous", "Stored", "Vault", "now_ms", "resolve"]

COLLECTION = "passwords"
_KEYSTORE_SLOT = "passwords"
_WRITE_ATTEMPTS = 5
_FULL_REINDEX = 256


def now_ms() -> int:
    return int(time.time() * 1000)


class Ambiguous(NotFound):
    """Several entries match and nothing says which one was meant."""


def resolve(local: Record, remote: Record) -> bytes:
    """``Collection.sync`` resolver: a queued write that met a newer version is merged."""
    if local.deleted or remote.deleted or not remote.plaintext:
        return local.plaintext
    return merge(Entry.from_bytes(local.plaintext), Entry.from_bytes(remote.plaintext)).to_bytes()


@dataclass(frozen=True)
class Stored:
    """What a write did: ``queued`` (offline, pushed at the next sync) and/or ``merged``."""

    entry: Entry
    queued: bool
    merged: bool


class Vault:
    """One device's password entries."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.coll = Collection(device, COLLECTION)
        self._index: Index | None = None

    def close(self) -> None:
        if self._index is not None:
            self._index.close()

    # ------------------------------------------------------------------ index
    def _index_key(self) -> bytes:
        """Made once per device even when several first commands race (one would otherwise
        index under a key the keystore then forgets)."""
        from keystead.core.capabilities import capabilities_for

        from . import adapter

        slot = capabilities_for(self.device, adapter).keystore_slot()
        value = slot.get_or_create("index_key", lambda: b64e(random_bytes(32)))
        return b64d(value, size=32, what="passwords index key")

    @property
    def index(self) -> Index:
        """The lookup index, brought up to date with the local item cache.

        The cursor is compared and the catch-up written under the index's lock, so another
        command's rows written meanwhile are either read from the cache here or written
        after this (never dropped by a rebuild that read the cache before they existed)."""
        if self._index is None:
            self._index = Index(self.device.home.path / "passwords-index.sqlite", self._index_key())
        index = self._index
        if index.cursor != self.device.cache.cursor(COLLECTION):
            with index.locked():
                cursor = self.device.cache.cursor(COLLECTION)
                if index.cursor != cursor:
                    self._reindex(index, cursor)
        return index

    def _reindex(self, index: Index, cursor: int) -> None:
        """Index what changed in the cache since the index's cursor; items already indexed
        at their version (this device's own writes, fetched back) cost nothing."""
        since = index.cursor
        if since is not None:
            changed, total = {}, 0
            for i in self.device.cache.items(COLLECTION, include_deleted=True):
                total += 1
                if i.seq > since:
                    changed[i.id] = i.version
            known = index.versions(changed)
            todo = [i for i, v in changed.items() if known.get(i) != v]
            if len(todo) <= max(_FULL_REINDEX, total // 8):  # else one pass over all is quicker
                index.replace(((i, self._cached(i), changed[i]) for i in todo), cursor)
                return
        index.replace(
            ((r.id, Entry.from_bytes(r.plaintext), r.version) for r in self.coll.records()),
            cursor,
            full=True,
        )

    def _cached(self, item_id: str) -> Entry | None:
        rec = self.coll.get(item_id)
        return None if rec is None else Entry.from_bytes(rec.plaintext)

    # ------------------------------------------------------------------ reading
    def _pending(self) -> dict[str, Record]:
        """Writes queued offline, decrypted: they are newer than the cache."""
        items = self.device.cache.pending(COLLECTION)
        if not items:
            return {}
        # Collection has no public reader for queued writes; see the adapter's notes.
        return {r.id: r for r in self.coll._open_many(items)}

    def entries(self) -> list[Entry]:
        """Every live entry, queued writes included, by name then URL."""
        pending = self._pending()
        out = [Entry.from_bytes(r.plaintext) for r in self.coll.records() if r.id not in pending]
        out += [Entry.from_bytes(r.plaintext) for r in pending.values() if not r.deleted]
        out.sort(key=lambda e: (e.name.lower(), e.url, e.username, e.id))
        return out

    def find(
        self,
        url: str,
        *,
        username: str | None = None,
        tiers: Sequence[MatchKind] = tuple(MatchKind),
        best: bool = True,
    ) -> list[Match]:
        """Entries for ``url``, closest first: with ``best``, only those of the closest tier
        that has any (exact, else origin, else registrable domain)."""
        page = _split(url)
        if page is None:
            return []
        pending = self._pending()
        tokens = [t for t in url_tokens(url) if t[0] in "uo"]
        found = self._matches(tokens, pending, url, username, tiers)
        if not found and MatchKind.DOMAIN in tiers:
            from ._match import registrable_domain

            domain = registrable_domain(page[0].host)
            if domain is not None:
                found = self._matches(["d:" + domain], pending, url, username, tiers)
        return [m for m in found if m.kind == found[0].kind] if best else found

    def _matches(
        self,
        tokens: Sequence[str],
        pending: dict[str, Record],
        url: str,
        username: str | None,
        tiers: Sequence[MatchKind],
    ) -> list[Match]:
        entries = []
        for item_id in sorted(set(self.index.candidates(tokens)) | set(pending)):
            rec = pending.get(item_id) or self.coll.get(item_id)
            if rec is None or rec.deleted:
                continue
            e = Entry.from_bytes(rec.plaintext)
            if username is None or e.username == username:
                entries.append(e)
        return find_matches(entries, url, tiers=tiers)

    def named(self, name: str) -> list[Entry]:
        """Live entries whose id is ``name`` or whose name is ``name`` in any case, through
        the index (no pass over the vault)."""
        pending = self._pending()
        ids = set(self.index.candidates([name_token(name)])) | set(pending)
        try:
            if self.coll.get(name) is not None or name in pending:
                ids.add(name)
        except FormatError:
            pass  # not an item id
        out = []
        for item_id in sorted(ids):
            rec = pending.get(item_id) or self.coll.get(item_id)
            if rec is None or rec.deleted:
                continue
            e = Entry.from_bytes(rec.plaintext)
            if e.id == name or e.name.casefold() == name.casefold():
                out.append(e)
        return out

    def one(self, url: str, username: str | None) -> Match:
        """The single entry ``url`` (and ``username``) names; NotFound or Ambiguous otherwise."""
        found = self.find(url, username=username)
        if not found:
            who = f" for user {username!r}" if username is not None else ""
            raise NotFound(f"no entry matches {url}{who}")
        if len(found) > 1:
            names = ", ".join(sorted(repr(m.entry.username) for m in found))
            raise Ambiguous(f"{len(found)} entries match {url} ({names}): pass --username")
        return found[0]

    # ------------------------------------------------------------------ writing
    def sync(self, *, refresh_chain: bool = True) -> SyncResult:
        """Push queued writes (merging any that conflict), fetch the rest, update the index."""
        result = self.coll.sync(resolve=resolve, refresh_chain=refresh_chain)
        _ = self.index
        return result

    def try_sync(self, *, refresh_chain: bool = True) -> bool:
        """Sync if the service answers; False when offline (the cache is used as it is)."""
        try:
            self.sync(refresh_chain=refresh_chain)
        except NetworkError:
            return False
        return True

    def write(self, entry: Entry, *, deleted: bool = False) -> Stored:
        """Store a new value of ``entry``: online with conflict merging, else queued."""
        merged = False
        for _ in range(_WRITE_ATTEMPTS):
            synced = self.coll.get(entry.id, include_deleted=True)
            base = None if synced is None else synced.version
            try:
                rec = self.coll.put(
                    entry.id, entry.to_bytes(), base_version=base, deleted=deleted, offline=True
                )
            except Conflict:
                # Someone wrote first: fetch their version and merge ours on top.
                self.coll.sync(resolve=resolve)
                current = self.coll.get(entry.id, include_deleted=True)
                if current is not None and not current.deleted and not deleted:
                    theirs = Entry.from_bytes(current.plaintext)
                    new = merge(entry, theirs)
                    merged = merged or new.revision != entry.revision
                    entry = new
                continue
            queued = any(
                p.id == entry.id and p.version == rec.version
                for p in self.device.cache.pending(COLLECTION)
            )
            self.index.replace([(entry.id, None if deleted else entry, rec.version)])
            return Stored(entry, queued, merged)
        raise Conflict(f"the entry kept changing on the service; try again ({entry.id})")

    def import_entries(
        self,
        entries: Sequence[Entry],
        *,
        progress: Callable[[int], None] | None = None,
        batch: int = BATCH,
    ) -> Plan:
        """Store the entries not already in the vault, in all-or-nothing batches.

        Ids must come from :func:`stable_ids`, so that a rerun (after a failure, or of
        the same file) writes nothing twice. ``progress`` is told each batch's size."""
        versions, live = {}, set()
        for item in self.device.cache.items(COLLECTION, include_deleted=True):
            versions[item.id] = item.version
            if not item.deleted:
                live.add(item.id)
        live |= {r.id for r in self._pending().values() if not r.deleted}
        plan = plan_import(entries, live, self.entries)
        for chunk in batches(plan.new, batch):
            self.coll.put_many([(e.id, data) for e, data in chunk], batch=len(chunk))
            # put_many writes version n+1 over a deleted item's n, else 1
            self.index.replace(((e.id, e, versions.get(e.id, 0) + 1) for e, _ in chunk), new=True)
            if progress is not None:
                progress(len(chunk))
        return plan
