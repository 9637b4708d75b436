"""What accounts keep on the service: sealed items, spooled messages and small records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..chain import ChainState
from ..errors import Conflict, Forbidden, FormatError, NotFound, QuotaExceeded
from ..items import ItemVerifier, SealedItem
from ._store_base import Nonce, StoreBase
from .db import Prepared
from .models import Account, CollectionSeqRow, ItemRow, RecordRow, SpoolRow

__all__ = ["SPOOL_MAX_BODY", "DataStore", "SpoolMessage"]

_ITEMS = cast(Table, ItemRow.__table__)
_SEQS = cast(Table, CollectionSeqRow.__table__)
_SPOOL_TABLE = cast(Table, SpoolRow.__table__)
_ACCOUNT_EXISTS = select(Account.name).where(Account.name == bindparam("a"))
_SPOOL_INSERT = insert(_SPOOL_TABLE).returning(_SPOOL_TABLE.c.id)
_SPOOL_TOTALS = (
    select(func.count(), func.coalesce(func.sum(func.length(SpoolRow.body)), 0))
    .where(SpoolRow.account == bindparam("a"))
    .where(SpoolRow.expires.is_(None) | (SpoolRow.expires > bindparam("now")))
)
_I = _ITEMS.c
_UPDATE_ITEM = (
    update(_ITEMS)
    .where(
        _I.account == bindparam("k_account"),
        _I.collection == bindparam("k_coll"),
        _I.item_id == bindparam("k_id"),
    )
    .values(
        {
            c: bindparam(c)
            for c in ("version", "epoch", "ciphertext", "deleted", "seq", "writer", "signature")
        }
        | {"proof": bindparam("proof")}
    )
)

_S = _SEQS.c
_GET_SEQ = (
    select(_S.seq, _S["items"], _S.bytes)
    .where(_S.account == bindparam("a"), _S.collection == bindparam("c"))
    .with_for_update()
)
_SET_SEQ = (
    update(_SEQS)
    .where(_S.account == bindparam("a"), _S.collection == bindparam("c"))
    .values(seq=bindparam("seq"), items=bindparam("n"), bytes=bindparam("b"))
)
_TOTALS = select(
    func.coalesce(func.sum(_S["items"]), 0), func.coalesce(func.sum(_S.bytes), 0)
).where(_S.account == bindparam("a"))
_CURRENT = select(_I.item_id, _I.version, func.length(_I.ciphertext)).where(
    _I.account == bindparam("a"),
    _I.collection == bindparam("c"),
    _I.item_id.in_(bindparam("ids", expanding=True)),
)

_SPOOL = (
    select(SpoolRow.id, SpoolRow.sender, SpoolRow.body, SpoolRow.created, SpoolRow.expires)
    .where(
        SpoolRow.account == bindparam("a"),
        SpoolRow.channel == bindparam("c"),
        SpoolRow.id > bindparam("after"),
    )
    .order_by(SpoolRow.id)
    .limit(bindparam("limit"))
)

_CHANGES = (
    select(
        ItemRow.item_id,
        ItemRow.version,
        ItemRow.epoch,
        ItemRow.ciphertext,
        ItemRow.deleted,
        ItemRow.seq,
        ItemRow.writer,
        ItemRow.signature,
        ItemRow.proof,
    )
    .where(
        ItemRow.account == bindparam("a"),
        ItemRow.collection == bindparam("c"),
        ItemRow.seq > bindparam("after"),
    )
    .order_by(ItemRow.seq)
    .limit(bindparam("limit"))
)

SPOOL_MAX_BODY = 1024 * 1024
"""A spooled message's body at most: every spool write checks it (core's route, adapters')."""


@dataclass(frozen=True)
class SpoolMessage:
    id: int
    sender: str
    body: bytes
    created: int


class DataStore(StoreBase):
    """Items with versions and a per-account change sequence; spools; keyed records."""

    def put_items(
        self,
        account: str,
        collection: str,
        items: Sequence[SealedItem],
        writer: str,
        nonce: Nonce | None = None,
    ) -> list[int]:
        """Store new versions written (and signed) by device ``writer``; each must be exactly
        one above the stored one (0: new) and sealed under the collection's current epoch.
        ``nonce``: the request's, recorded in the same transaction."""
        if not items:
            if nonce is not None:
                self.use_nonce(*nonce)
            return []
        with self._write_core() as (conn, topics):
            if nonce is not None:
                self._record_nonce(conn, *nonce)
            state = self._state(conn, account)
            return self._put_items(conn, account, state, collection, items, {writer}, topics.add)

    def _put_items(
        self,
        db: Session | Connection,
        account: str,
        state: ChainState,
        collection: str,
        items: Sequence[SealedItem],
        writers: set[str],
        announce: Callable[[str], None],
    ) -> list[int]:
        """Core statements only (a write of one item is the service's hottest write), on a
        Core connection or inside an ORM session's transaction (bundles)."""
        ids = [i.id for i in items]
        if len(set(ids)) != len(ids):
            raise FormatError("the same item twice in one write")
        coll = state.collections.get(collection)
        if coll is None or coll.kind != "items":
            raise NotFound(f"no items collection {collection!r} in this account")
        verifier = ItemVerifier()
        for item in items:
            _check_item(state, coll.name, coll.current_epoch, item, writers, verifier)
        seq, count, size = self._collection_seq(db, account, collection)
        current: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(ids, 500):
            for item_id, version, length in db.execute(
                _CURRENT, {"a": account, "c": collection, "ids": list(chunk)}
            ):
                current[item_id] = (version, length)
        stale = [
            i.id for i in items if i.version != (current[i.id][0] + 1 if i.id in current else 1)
        ]
        if stale:
            raise Conflict(f"stale write for item {stale[0]} (sync first)")
        added, grown = _growth(items, current)
        self._check_item_quota(db, account, added, grown)
        seqs, new, changed = [], [], []
        for item in items:
            seq += 1
            seqs.append(seq)
            row = {
                "version": item.version,
                "epoch": item.epoch,
                "ciphertext": item.ciphertext,
                "deleted": item.deleted,
                "seq": seq,
                "writer": item.writer,
                "signature": item.signature,
                "proof": item.proof,
            }
            if item.id in current:
                changed.append({**row, "k_account": account, "k_coll": collection, "k_id": item.id})
            else:
                new.append(
                    {**row, "account": account, "collection": collection, "item_id": item.id}
                )
        if new:
            db.execute(insert(_ITEMS), new)
        if changed:
            db.execute(_UPDATE_ITEM, changed)
        db.execute(
            update(_SEQS)
            .where(CollectionSeqRow.account == account, CollectionSeqRow.collection == collection)
            .values(seq=seq, items=count + added, bytes=size + grown)
        )
        announce(f"items:{account}:{collection}")
        return seqs

    def _collection_seq(
        self, db: Session | Connection, account: str, collection: str
    ) -> tuple[int, int, int]:
        """The collection's change counter (seq, items, bytes), locked until the commit
        (created at 0)."""
        key = {"a": account, "c": collection}
        row = db.execute(_GET_SEQ, key).first()
        if row is None:
            try:
                with db.begin_nested():
                    db.execute(
                        insert(_SEQS).values(
                            account=account, collection=collection, seq=0, items=0, bytes=0
                        )
                    )
            except IntegrityError:  # another writer created it first: take its lock
                pass
            row = db.execute(_GET_SEQ, key).first()
            if row is None:  # pragma: no cover - the row was just created
                raise Conflict("the collection moved on meanwhile; retry")
        seq, count, size = row
        return seq, count or 0, size or 0

    def _check_item_quota(
        self, db: Session | Connection, account: str, added: int, grown: int
    ) -> None:
        count, size = db.execute(_TOTALS, {"a": account}).one()
        count, size = count + added, size + grown
        cfg = self.config
        if count > cfg.quota_items:
            raise QuotaExceeded(
                f"account {account} would hold more than {cfg.quota_items} items (quota_items)",
                limit="quota_items",
            )
        if size > cfg.quota_item_bytes:
            raise QuotaExceeded(
                f"account {account} would store more than "
                f"{cfg.quota_item_bytes} bytes of items (quota_item_bytes)",
                limit="quota_item_bytes",
            )

    def changes(self, account: str, collection: str, after: int, limit: int) -> list[SealedItem]:
        # a Core select (no ORM identity map): the hottest read of the service
        if self._changes_read is None:
            self._changes_read = Prepared(_CHANGES, self.engine)
        rows = self._changes_read.all(
            {"a": account, "c": collection, "after": after, "limit": limit}
        )
        return [
            SealedItem(
                item_id,
                version,
                epoch,
                bytes(ciphertext),
                bool(deleted),
                seq,
                writer,
                bytes(signature),
                bytes(proof),
            )
            for item_id, version, epoch, ciphertext, deleted, seq, writer, signature, proof in rows
        ]

    # ------------------------------------------------------------------- spool
    def spool_put(
        self,
        account: str,
        channel: str,
        sender: str,
        body: bytes,
        now: int,
        expires: int | None = None,
    ) -> int:
        return self.spool_put_many(channel, sender, [(account, body)], now, expires)[0]

    def spool_put_many(
        self,
        channel: str,
        sender: str,
        messages: Sequence[tuple[str, bytes]],
        now: int,
        expires: int | None = None,
        *,
        nonce: Nonce | None = None,
    ) -> list[int]:
        """Deliver to several accounts' spools in one transaction: all or none (``nonce``:
        the request's, recorded in the same transaction)."""
        if any(len(body) > SPOOL_MAX_BODY for _, body in messages):
            raise FormatError("spool messages are 1 MiB at most")
        with self._write_core() as (conn, topics):  # Core statements: the hot post of waits
            if nonce is not None:
                self._record_nonce(conn, *nonce)
            # Ids of one spool must be handed out in commit order, or a reader waiting
            # "after" a newer id would skip an older one that commits later (PostgreSQL).
            accounts = sorted({a for a, _ in messages})
            for account in accounts:
                self._lock(conn, f"spool:{account}")
                if conn.execute(_ACCOUNT_EXISTS, {"a": account}).first() is None:
                    raise NotFound(f"no account {account!r} on this service")
                bodies = [b for a, b in messages if a == account]
                self._check_spool_quota(conn, account, bodies, now)
            ids = [
                conn.execute(
                    _SPOOL_INSERT,
                    {
                        "account": account,
                        "channel": channel,
                        "sender": sender,
                        "body": body,
                        "created": now,
                        "expires": expires,
                    },
                ).scalar_one()
                for account, body in messages
            ]
            topics.update(f"spool:{account}:{channel}" for account in accounts)
            return ids

    def _check_spool_quota(
        self, conn: Connection, account: str, bodies: list[bytes], now: int
    ) -> None:
        count, size = conn.execute(_SPOOL_TOTALS, {"a": account, "now": now}).one()
        cfg = self.config
        if count + len(bodies) > cfg.quota_spool_messages:
            raise QuotaExceeded(
                f"the spools of {account} hold {cfg.quota_spool_messages} "
                "messages already (quota_spool_messages)",
                limit="quota_spool_messages",
            )
        if size + sum(map(len, bodies)) > cfg.quota_spool_bytes:
            raise QuotaExceeded(
                f"the spools of {account} are full (quota_spool_bytes)", limit="quota_spool_bytes"
            )

    def spool_get(
        self, account: str, channel: str, after: int, limit: int, now: int
    ) -> list[SpoolMessage]:
        # one SELECT on the driver's cursor: every long poll runs it when it starts and when
        # it is woken
        if self._spool_read is None:
            self._spool_read = Prepared(_SPOOL, self.engine)
        rows = self._spool_read.all({"a": account, "c": channel, "after": after, "limit": limit})
        return [
            SpoolMessage(msg_id, sender, bytes(body), created)
            for msg_id, sender, body, created, expires in rows
            if expires is None or expires > now
        ]

    def spool_delete(self, account: str, channel: str, message_id: int) -> bool:
        with self._write() as s:
            res = s.execute(
                delete(SpoolRow).where(
                    SpoolRow.account == account,
                    SpoolRow.channel == channel,
                    SpoolRow.id == message_id,
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- records
    def record_put(
        self,
        account: str,
        namespace: str,
        key: str,
        value: bytes,
        now: int,
        *,
        create_only: bool = False,
    ) -> None:
        try:
            with self._write() as s:
                row = s.get(RecordRow, (account, namespace, key))
                if row is not None and create_only:
                    raise Conflict(f"{namespace} record {key!r} already exists")
                if row is None:
                    s.add(
                        RecordRow(
                            account=account, namespace=namespace, key=key, value=value, created=now
                        )
                    )
                else:
                    row.value = value
                s.flush()
                self._announce(s, f"record:{account}:{namespace}")
        except IntegrityError:
            raise Conflict(f"{namespace} record {key!r} already exists") from None

    def record_get(self, account: str, namespace: str, key: str) -> bytes | None:
        with self._sessions() as s:
            row = s.get(RecordRow, (account, namespace, key))
            return None if row is None else row.value

    def record_list(self, account: str, namespace: str) -> list[tuple[str, bytes]]:
        with self._sessions() as s:
            rows = s.scalars(
                select(RecordRow)
                .where(RecordRow.account == account, RecordRow.namespace == namespace)
                .order_by(RecordRow.key)
            )
            return [(r.key, r.value) for r in rows]

    def record_delete(self, account: str, namespace: str, key: str) -> bool:
        with self._write() as s:
            res = s.execute(
                delete(RecordRow).where(
                    RecordRow.account == account,
                    RecordRow.namespace == namespace,
                    RecordRow.key == key,
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]


ADMIN_ONLY = ("_account", "_admin")


def _check_item(
    state: ChainState,
    collection: str,
    epoch: int,
    item: SealedItem,
    writers: set[str],
    verifier: ItemVerifier,
) -> None:
    """Refuse what would make the collection unreadable or misattributed: a stale epoch, a
    writer other than the requester, a bad signature, a member writing admin-only state."""
    if item.epoch != epoch:
        raise Conflict(
            f"item {item.id} is sealed under epoch {item.epoch} of {collection}, "
            f"whose current epoch is {epoch}: refresh the chain and seal again"
        )
    writer = state.devices.get(item.writer)
    if item.writer not in writers or writer is None or not writer.live:
        raise Forbidden(f"item {item.id} names another writer than the requesting device")
    verifier.verify(item, writer.signing_key, account=state.account, collection=collection)
    if collection in ADMIN_ONLY and writer.role != "admin":
        raise Forbidden(f"only admin devices write {collection}")


def _growth(items: Sequence[SealedItem], current: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """How many items a write adds, and how many ciphertext bytes (``current``: the stored
    version and ciphertext size of each item written over)."""
    added = sum(1 for i in items if i.id not in current)
    grown = sum(len(i.ciphertext) - (current[i.id][1] if i.id in current else 0) for i in items)
    return added, grown


def _chunks(seq: Sequence[str], n: int) -> list[Sequence[str]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]
