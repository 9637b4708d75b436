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
from dataclasses import dataclass, field, replace

from .chain import ChainState, DeviceInfo
from .client import path
from .errors import Conflict, DecryptionFailed, FormatError, NetworkError, VerificationError
from .items import ItemVerifier, SealedItem, check_item_id, open_item, seal_item, sign_items

__all__ = ["ADMIN_ONLY", "Collection", "Record", "SyncResult", "Unreadable"]

PAGE = 5000
ADMIN_ONLY = ("_account", "_admin")
"""Collections whose items only admin devices write (the service refuses members too)."""


@dataclass(frozen=True)
class Record:
    """A decrypted item, with the device that wrote it (checked against the chain)."""

    id: str
    version: int
    plaintext: bytes
    deleted: bool = False
    writer: str = ""
    by_admin: bool = False
    """Written by a device that was an admin: what admin-only kinds of item must check."""


@dataclass(frozen=True)
class Unreadable:
    """An item this device cannot open or trust, and why (one line for the person)."""

    id: str
    writer: str
    reason: str


@dataclass
class SyncResult:
    fetched: int = 0
    pushed: int = 0
    conflicts: list[str] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


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
        self._verifier = ItemVerifier()

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
        before = set(self.device.cache.unreadable(self.name))
        result.fetched = self._fetch_all_changes()
        self._recheck(before)
        result.unreadable = [u for u in self.unreadable() if u.id not in before]
        return result

    def _recheck(self, ids: set[str]) -> None:
        """Check again the items that failed before (a few): a verdict that came from the
        moment (a cfrag a service garbled, a writer newer than our chain) heals by itself
        instead of leaving the item for ``--drop-unreadable`` to delete."""
        cache = self.device.cache
        still = cache.unreadable(self.name)
        items = [
            i for i in (cache.item(self.name, x) for x in sorted(ids & set(still))) if i is not None
        ]
        if items:
            cache.store(self.name, items, cache.cursor(self.name), self._screen(items))

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
                cache.store(self.name, items, after, self._screen(items))
                fetched += len(items)
            if len(items) < PAGE:
                return fetched

    def _check(self, state: ChainState, item: SealedItem) -> DeviceInfo:
        """The item's writer, after its signature; refused if the writer was not live when
        the item's epoch began, or (in admin-only collections) is not an admin."""
        writer = state.devices.get(item.writer)
        if writer is None:
            raise VerificationError("written by a device the chain does not know")
        self._verifier.verify(
            item, writer.signing_key, account=self.device.account, collection=self.name
        )
        epoch = state.collection(self.name).epoch(item.epoch)
        if writer.removed_seq is not None and epoch.seq > writer.removed_seq:
            raise VerificationError(f"written by {writer.name} after its removal")
        if self.name in ADMIN_ONLY and writer.role != "admin":
            raise VerificationError(f"written by {writer.name}, which is not an admin")
        return writer

    def _screen(self, items: Sequence[SealedItem]) -> dict[str, str]:
        """Check fetched items once (writer, signature, epoch, decryption): id -> why not."""
        state = self.device.chain(refresh=False)
        # Written under an epoch, or by a device, newer than our chain: refresh it first.
        if any(
            i.epoch not in state.collection(self.name).epochs or i.writer not in state.devices
            for i in items
        ):
            state = self.device.chain()
        bad: dict[str, str] = {}
        keys: dict[int, bytes] = {}
        known = set(state.collection(self.name).epochs)
        try:  # every epoch these items name, in one walk
            keys.update(
                self.device.epoch_keys(
                    self.name, sorted({i.epoch for i in items if i.epoch in known})
                )
            )
        except (VerificationError, DecryptionFailed, FormatError):
            pass  # each item is then tried (and named) on its own below
        for i in items:
            try:
                self._check(state, i)
                if i.epoch not in keys:
                    keys.update(self.device.epoch_keys(self.name, [i.epoch]))
                open_item(keys[i.epoch], account=self.device.account, collection=self.name, item=i)
            except (VerificationError, DecryptionFailed, FormatError) as e:
                bad[i.id] = str(e) or "does not decrypt"
        return bad

    def _open_many(self, items: Sequence[SealedItem]) -> list[Record]:
        """Decrypt items that passed their check (the local cache keeps only the verdict)."""
        state = self.device.chain(refresh=False)
        acct = self.device.account
        keys = self.device.epoch_keys(self.name, sorted({i.epoch for i in items}))
        out = []
        for i in items:
            writer = state.devices.get(i.writer)
            out.append(
                Record(
                    i.id,
                    i.version,
                    open_item(keys[i.epoch], account=acct, collection=self.name, item=i),
                    i.deleted,
                    i.writer,
                    writer is not None and writer.role == "admin",
                )
            )
        return out

    def _open(self, item: SealedItem) -> Record:
        return self._open_many([item])[0]

    def records(self) -> list[Record]:
        """Every live item this device can open and trust (from the local cache: sync
        first); the rest are left out and listed by :meth:`unreadable`."""
        bad = self.device.cache.unreadable(self.name)
        return self._open_many([i for i in self.device.cache.items(self.name) if i.id not in bad])

    def unreadable(self) -> list[Unreadable]:
        """Items in the local cache that this device cannot open or trust, one line each."""
        return [
            Unreadable(i, w, r)
            for i, (w, r) in sorted(self.device.cache.unreadable(self.name).items())
        ]

    def drop(self, item_ids: Iterable[str]) -> int:
        """Replace unreadable items by deletions (an admin's ``sync --drop-unreadable``)."""
        n = 0
        for item_id in item_ids:
            current = self.device.cache.item(self.name, item_id)
            if current is not None and not current.deleted:
                self.put(item_id, b"", base_version=current.version, deleted=True)
                n += 1
        return n

    def get(self, item_id: str, *, include_deleted: bool = False) -> Record | None:
        """One item; None if absent, deleted, or not one this device can open and trust."""
        item = self.device.cache.item(self.name, check_item_id(item_id))
        if (
            item is None
            or (item.deleted and not include_deleted)
            or item_id in self.device.cache.unreadable(self.name)
        ):
            return None
        return self._open(item)

    # ------------------------------------------------------------------ writing
    def _seal(self, item_id: str, plaintext: bytes, version: int, deleted: bool) -> SealedItem:
        state = self.device.chain(refresh=False)
        epoch = state.collection(self.name).current_epoch
        key = self.device.epoch_keys(self.name, [epoch])[epoch]
        return seal_item(
            key,
            account=self.device.account,
            collection=self.name,
            item_id=item_id,
            version=version,
            epoch=epoch,
            plaintext=plaintext,
            deleted=deleted,
            writer=self.device.device_id,
        )

    def _sign(self, items: Sequence[SealedItem]) -> list[SealedItem]:
        return sign_items(
            self.device.keys.signing, account=self.device.account, collection=self.name, items=items
        )

    def _post(self, items: Sequence[SealedItem]) -> None:
        try:
            resp = self.device.client.post(self._url, {"items": [i.to_json() for i in items]})
        except Conflict as e:
            if "epoch" not in str(e):
                raise
            # Our chain predates a rotation: learn the new epoch and seal again under it.
            self.device.chain()
            items = self._sign(
                [self._seal(i.id, self._open(i).plaintext, i.version, i.deleted) for i in items]
            )
            resp = self.device.client.post(self._url, {"items": [i.to_json() for i in items]})
        seqs = resp["seqs"]
        stored = [replace(i, seq=s) for i, s in zip(items, seqs, strict=True)]
        # The cursor is not advanced: others' changes before these seqs are still unfetched.
        self.device.cache.store(self.name, stored, self.device.cache.cursor(self.name))

    def _next_version(self, item_id: str, base_version: int | None) -> int:
        if base_version is not None:
            return base_version + 1
        current = self.device.cache.item(self.name, item_id)
        return current.version + 1 if current else 1

    def put(
        self,
        item_id: str,
        plaintext: bytes,
        *,
        base_version: int | None = None,
        deleted: bool = False,
        offline: bool = False,
    ) -> Record:
        """Write a new version of an item. ``Conflict`` if someone else wrote first.

        With ``offline``, a write the service cannot take now is queued for the next sync.
        """
        check_item_id(item_id)
        version = self._next_version(item_id, base_version)
        [item] = self._sign([self._seal(item_id, plaintext, version, deleted)])
        try:
            self._post([item])
        except NetworkError:
            if not offline:
                raise
            self.device.cache.queue(self.name, item)
        return Record(item_id, version, plaintext, deleted)

    def delete(
        self, item_id: str, *, base_version: int | None = None, offline: bool = False
    ) -> Record:
        return self.put(item_id, b"", base_version=base_version, deleted=True, offline=offline)

    def put_many(self, records: Iterable[tuple[str, bytes]], *, batch: int = 20_000) -> int:
        """Write many new items (or new versions) in all-or-nothing batches."""
        sealed = [self._seal(i, p, self._next_version(i, None), False) for i, p in records]
        for start in range(0, len(sealed), batch):
            self._post(self._sign(sealed[start : start + batch]))
        return len(sealed)
