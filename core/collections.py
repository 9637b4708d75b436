"""Collections: an application's encrypted, versioned items, synced through the service.

Reads come from the local cache after :meth:`Collection.sync`; each distinct
epoch costs one re-encryption per device, then every item is one AEAD open.
Writes are optimistic: a write based on a stale version is refused by the
service, and :meth:`sync` hands both sides to the caller's ``resolve`` so that
no edit is lost silently. Writes made while the service is unreachable are
queued and pushed by the next sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ._encoding import b64e
from .client import path
from .errors import Conflict, NetworkError
from .items import SealedItem, check_item_id, open_item, seal_item

__all__ = ["Collection", "Record", "SyncResult"]

PAGE = 5000


@dataclass(frozen=True)
class Record:
    """A decrypted item."""

    id: str
    version: int
    plaintext: bytes
    deleted: bool = False


@dataclass
class SyncResult:
    fetched: int = 0
    pushed: int = 0
    conflicts: list[str] = field(default_factory=list)


Resolver = Callable[[Record, Record], bytes]
"""Given (local, remote) records of one item, return the plaintext to write on top."""


class Collection:
    """One collection of the device's own account."""

    def __init__(self, device: object, name: str) -> None:
        from .device import Device

        if not isinstance(device, Device):
            raise TypeError("Collection needs a Device")
        self.device = device
        self.name = name
        self._url = path("accounts", device.account, "collections", name, "items")

    # ------------------------------------------------------------------ reading
    def sync(self, resolve: Resolver | None = None, *, refresh_chain: bool = True) -> SyncResult:
        """Push queued writes, then fetch every change since the last sync.

        A queued write that conflicts is merged with ``resolve``; without one it stays
        queued and is listed in ``SyncResult.conflicts``. ``refresh_chain=False`` is for a
        caller that has just verified the newest chain itself (one fetch, not one a sync)."""
        result = SyncResult()
        if refresh_chain:
            self.device.chain()
        self.device.me()
        self._push_pending(result, resolve)
        result.fetched = self._fetch_all_changes()
        return result

    def _push_pending(self, result: SyncResult, resolve: Resolver | None) -> None:
        cache = self.device.cache
        for item in cache.pending(self.name):
            try:
                self._post([item])
                result.pushed += 1
            except Conflict:
                result.conflicts.append(item.id)
                if resolve is None:
                    continue  # stays queued: nothing is dropped without a way to merge it
                local = self._open(item)
                self._fetch_all_changes()
                remote = self.get(item.id, include_deleted=True)
                if remote is not None:
                    self.put(item.id, resolve(local, remote), deleted=local.deleted)
            cache.unqueue(self.name, item.id)

    def _fetch_all_changes(self) -> int:
        cache = self.device.cache
        after, fetched = cache.cursor(self.name), 0
        while True:
            resp = self.device.client.get(self._url, params={"after": after, "limit": PAGE})
            items = [SealedItem.from_json(i) for i in resp["items"]]
            if items:
                after = items[-1].seq
                cache.store(self.name, items, after)
                fetched += len(items)
            if len(items) < PAGE:
                return fetched

    def _open_many(self, items: Sequence[SealedItem]) -> list[Record]:
        keys = self.device.epoch_keys(self.name, sorted({i.epoch for i in items}))
        acct = self.device.account
        return [Record(i.id, i.version,
                       open_item(keys[i.epoch], account=acct, collection=self.name, item=i),
                       i.deleted) for i in items]

    def _open(self, item: SealedItem) -> Record:
        return self._open_many([item])[0]

    def records(self) -> list[Record]:
        """Every live item, decrypted (from the local cache: sync first)."""
        return self._open_many(list(self.device.cache.items(self.name)))

    def get(self, item_id: str, *, include_deleted: bool = False) -> Record | None:
        item = self.device.cache.item(self.name, check_item_id(item_id))
        if item is None or (item.deleted and not include_deleted):
            return None
        return self._open(item)

    # ------------------------------------------------------------------ writing
    def _seal(self, item_id: str, plaintext: bytes, version: int, deleted: bool) -> SealedItem:
        state = self.device.chain(refresh=False)
        epoch = state.collection(self.name).current_epoch
        key = self.device.epoch_keys(self.name, [epoch])[epoch]
        return seal_item(key, account=self.device.account, collection=self.name,
                         item_id=item_id, version=version, epoch=epoch, plaintext=plaintext,
                         deleted=deleted)

    def _post(self, items: Sequence[SealedItem]) -> None:
        resp = self.device.client.post(self._url, {"items": [
            {"id": i.id, "version": i.version, "epoch": i.epoch,
             "ciphertext": b64e(i.ciphertext), "deleted": i.deleted} for i in items]})
        seqs = resp["seqs"]
        stored = [SealedItem(i.id, i.version, i.epoch, i.ciphertext, i.deleted, s)
                  for i, s in zip(items, seqs, strict=True)]
        # The cursor is not advanced: others' changes before these seqs are still unfetched.
        self.device.cache.store(self.name, stored, self.device.cache.cursor(self.name))

    def _next_version(self, item_id: str, base_version: int | None) -> int:
        if base_version is not None:
            return base_version + 1
        current = self.device.cache.item(self.name, item_id)
        return current.version + 1 if current else 1

    def put(self, item_id: str, plaintext: bytes, *, base_version: int | None = None,
            deleted: bool = False, offline: bool = False) -> Record:
        """Write a new version of an item. ``Conflict`` if someone else wrote first.

        With ``offline``, a write the service cannot take now is queued for the next sync.
        """
        check_item_id(item_id)
        version = self._next_version(item_id, base_version)
        item = self._seal(item_id, plaintext, version, deleted)
        try:
            self._post([item])
        except NetworkError:
            if not offline:
                raise
            self.device.cache.queue(self.name, item)
        return Record(item_id, version, plaintext, deleted)

    def delete(self, item_id: str, *, base_version: int | None = None,
               offline: bool = False) -> Record:
        return self.put(item_id, b"", base_version=base_version, deleted=True, offline=offline)

    def put_many(self, records: Iterable[tuple[str, bytes]], *, batch: int = 20_000) -> int:
        """Write many new items (or new versions) in all-or-nothing batches."""
        sealed = [self._seal(i, p, self._next_version(i, None), False) for i, p in records]
        for start in range(0, len(sealed), batch):
            self._post(sealed[start:start + batch])
        return len(sealed)
