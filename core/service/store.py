"""The service's storage operations: everything the routes do to the database.

Each method is one transaction. Chain appends are checked with the same pure
verifier clients use (:mod:`keystead.core.chain`); nothing is written unless
the whole request is valid. Values returned are core types or plain
dataclasses, never ORM rows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .._umbral import PREPublicKey, ReencryptorCache, verify_kfrag
from ..chain import ChainState, SignedEntry, check_name, verify_chain
from ..crypto import VerifyKey
from ..errors import (
    Conflict,
    DeviceRemoved,
    Forbidden,
    FormatError,
    KeysteadError,
    NotFound,
    RateLimited,
    VerificationError,
)
from ..items import SealedItem
from .models import (
    Account,
    AuditRow,
    ChainEntryRow,
    DeviceRow,
    GrantRow,
    ItemRow,
    NonceRow,
    PairingFailureRow,
    PairingRow,
    RecordRow,
    SpoolRow,
)

__all__ = ["AuthDevice", "Grant", "SpoolMessage", "Store"]

PAIRING_TTL = 600
PAIRING_MAX_FAILURES = 10
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class AuthDevice:
    """A device as request authentication sees it."""

    account: str
    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    signing_key: VerifyKey
    live: bool


@dataclass(frozen=True)
class Grant:
    """A stored delegation: a kfrag from ``account``'s key ``key`` to a device or account."""

    key: str
    target_kind: str
    target: str
    target_generation: int
    kfrag: bytes
    expires: int | None


@dataclass(frozen=True)
class SpoolMessage:
    id: int
    sender: str
    body: bytes
    created: int


@dataclass(frozen=True)
class AuditRecord:
    key: str
    grantee_account: str
    grantee_device: str
    context: str
    allowed: bool
    reason: str
    time: int


class Store:
    """All database work of the service."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._states: dict[str, ChainState] = {}
        self._reencryptor = ReencryptorCache()

    # ----------------------------------------------------------------- chain
    def _entries(self, s: Session, account: str, after: int = -1) -> list[SignedEntry]:
        rows = s.scalars(
            select(ChainEntryRow).where(ChainEntryRow.account == account,
                                        ChainEntryRow.seq > after).order_by(ChainEntryRow.seq)
        )
        return [SignedEntry(r.entry, r.sig, r.device_sig) for r in rows]

    def _state(self, s: Session, account: str) -> ChainState:
        """The verified chain state, extended from a per-process cache keyed by the head."""
        cached = self._states.get(account)
        if cached is not None:
            newer = self._entries(s, account, cached.seq)
            state = cached.extend(newer) if newer else cached
        else:
            entries = self._entries(s, account)
            if not entries:
                raise NotFound(f"no account {account!r} on this service")
            state = verify_chain(entries, account=account)
        self._states[account] = state
        return state

    def chain_state(self, account: str) -> ChainState:
        with self._sessions() as s:
            return self._state(s, account)

    def chain(self, account: str, after: int = -1) -> list[SignedEntry]:
        with self._sessions() as s:
            if s.get(Account, account) is None:
                raise NotFound(f"no account {account!r} on this service")
            return self._entries(s, account, after)

    def create_account(self, account: str, entries: Sequence[SignedEntry],
                       recovery_blob: bytes, now: int) -> ChainState:
        check_name(account, "account name")
        state = verify_chain(entries, account=account)
        try:
            with self._sessions.begin() as s:
                s.add(Account(name=account, created=now, item_seq=0, recovery_blob=recovery_blob))
                s.flush()
                self._write_entries(s, account, entries, state)
        except IntegrityError:
            raise Conflict(f"account {account!r} already exists") from None
        self._states[account] = state
        return state

    def _write_entries(self, s: Session, account: str, entries: Sequence[SignedEntry],
                       state: ChainState) -> None:
        for e in entries:
            seq = json.loads(e.entry)["seq"]
            s.add(ChainEntryRow(account=account, seq=seq, entry=e.entry, sig=e.signature,
                                device_sig=e.device_signature))
        for d in state.devices.values():
            row = s.get(DeviceRow, (account, d.id))
            scopes = json.dumps(list(d.scopes))
            if row is None:
                s.add(DeviceRow(account=account, device_id=d.id, name=d.name, role=d.role,
                                scopes=scopes, signing_key=d.signing_key.raw, live=d.live))
            else:
                if row.live and not d.live:
                    # Enforcement: a removed device loses every delegation at once.
                    s.execute(delete(GrantRow).where(GrantRow.account == account,
                                                     GrantRow.target_kind == "device",
                                                     GrantRow.target == d.id))
                row.live, row.role, row.scopes = d.live, d.role, scopes
        s.flush()

    def append(self, account: str, entries: Sequence[SignedEntry]) -> ChainState:
        """Append entries (already signed by the account key) after checking them."""
        if not entries:
            raise FormatError("nothing to append")
        with self._chain_tx(account) as s:
            state = self._append(s, account, entries)
        self._states[account] = state
        return state

    @contextmanager
    def _chain_tx(self, account: str) -> Iterator[Session]:
        """A transaction that writes the chain: on any failure the cached state is dropped,
        and a concurrent append (same sequence number) becomes a ``Conflict``."""
        try:
            with self._sessions.begin() as s:
                yield s
        except IntegrityError:
            self._states.pop(account, None)
            raise Conflict("the chain moved on meanwhile; sync and retry") from None
        except KeysteadError:
            self._states.pop(account, None)
            raise

    def _append(self, s: Session, account: str, entries: Sequence[SignedEntry]) -> ChainState:
        state = self._state(s, account).extend(entries)
        self._write_entries(s, account, entries, state)
        return state

    def recovery_blob(self, account: str) -> bytes:
        with self._sessions() as s:
            acct = s.get(Account, account)
            if acct is None or acct.recovery_blob is None:
                raise NotFound(f"no account {account!r} on this service")
            return acct.recovery_blob

    def set_recovery_blob(self, account: str, blob: bytes) -> None:
        with self._sessions.begin() as s:
            s.execute(update(Account).where(Account.name == account).values(recovery_blob=blob))

    # ---------------------------------------------------------- authentication
    def device(self, account: str, device_id: str) -> AuthDevice:
        with self._sessions() as s:
            row = s.get(DeviceRow, (account, device_id))
            if row is None:
                raise Forbidden("unknown device")
            return AuthDevice(account, row.device_id, row.name, row.role,
                              tuple(json.loads(row.scopes)), VerifyKey(row.signing_key), row.live)

    def use_nonce(self, device: str, nonce: str, now: int, window: int) -> None:
        """Record a nonce; a replay within the window is refused."""
        try:
            with self._sessions.begin() as s:
                s.add(NonceRow(device=device, nonce=nonce, time=now))
                s.flush()
                if secrets.randbelow(64) == 0:
                    s.execute(delete(NonceRow).where(NonceRow.time < now - 2 * window))
        except IntegrityError:
            raise Forbidden("replayed request") from None

    # ------------------------------------------------------------------- items
    def put_items(self, account: str, collection: str, items: Sequence[SealedItem]) -> list[int]:
        """Store new versions; each must be exactly one above the stored one (0: new)."""
        if not items:
            return []
        ids = [i.id for i in items]
        if len(set(ids)) != len(ids):
            raise FormatError("the same item twice in one write")
        with self._sessions.begin() as s:
            acct = s.scalars(select(Account).where(Account.name == account).with_for_update()).one()
            current = {
                r.item_id: r
                for chunk in _chunks(ids, 500)
                for r in s.scalars(select(ItemRow).where(
                    ItemRow.account == account, ItemRow.collection == collection,
                    ItemRow.item_id.in_(chunk)))
            }
            stale = [i.id for i in items
                     if i.version != (current[i.id].version + 1 if i.id in current else 1)]
            if stale:
                raise Conflict(f"stale write for item {stale[0]} (sync first)")
            seqs = []
            for item in items:
                acct.item_seq += 1
                seqs.append(acct.item_seq)
                row = current.get(item.id)
                if row is None:
                    s.add(ItemRow(account=account, collection=collection, item_id=item.id,
                                  version=item.version, epoch=item.epoch,
                                  ciphertext=item.ciphertext, deleted=item.deleted,
                                  seq=acct.item_seq))
                else:
                    row.version, row.epoch = item.version, item.epoch
                    row.ciphertext = item.ciphertext
                    row.deleted, row.seq = item.deleted, acct.item_seq
            return seqs

    def changes(self, account: str, collection: str, after: int, limit: int) -> list[SealedItem]:
        with self._sessions() as s:
            rows = s.scalars(
                select(ItemRow).where(ItemRow.account == account,
                                      ItemRow.collection == collection, ItemRow.seq > after)
                .order_by(ItemRow.seq).limit(limit))
            return [SealedItem(r.item_id, r.version, r.epoch, r.ciphertext, r.deleted, r.seq)
                    for r in rows]

    # ------------------------------------------------------------------ grants
    def _receiving_key(self, s: Session, target_kind: str, target: str, generation: int,
                       owner: ChainState) -> PREPublicKey:
        if target_kind == "device":
            dev = owner.devices.get(target)
            if dev is None or not dev.live:
                raise VerificationError("a grant for a device that is not live")
            return dev.pre_key
        if target_kind == "account":
            other = self._state(s, target)
            if generation not in other.sharing_keys:
                raise VerificationError("a grant for an unknown sharing key generation")
            return other.sharing_keys[generation]
        raise FormatError(f"unknown grant target kind {target_kind!r}")

    def put_grants(self, account: str, grants: Sequence[Grant], now: int) -> None:
        """Store grants after verifying each kfrag against the account chain."""
        with self._sessions.begin() as s:
            self._put_grants(s, account, self._state(s, account), grants, now)

    def _put_grants(self, s: Session, account: str, owner: ChainState, grants: Sequence[Grant],
                    now: int) -> None:
        for g in grants:
            coll = owner.collection(g.key)
            receiving = self._receiving_key(s, g.target_kind, g.target,
                                            g.target_generation, owner)
            verify_kfrag(g.kfrag, signer=owner.kfrag_signer, delegating=coll.public_key,
                         receiving=receiving)
            s.execute(delete(GrantRow).where(
                GrantRow.account == account, GrantRow.key == g.key,
                GrantRow.target_kind == g.target_kind, GrantRow.target == g.target))
            s.add(GrantRow(account=account, key=g.key, target_kind=g.target_kind,
                           target=g.target, target_generation=g.target_generation,
                           kfrag=g.kfrag, expires=g.expires, created=now))

    def delete_grant(self, account: str, key: str, target_kind: str, target: str) -> bool:
        with self._sessions.begin() as s:
            res = s.execute(delete(GrantRow).where(
                GrantRow.account == account, GrantRow.key == key,
                GrantRow.target_kind == target_kind, GrantRow.target == target))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def grants(self, account: str, key: str | None = None) -> list[Grant]:
        with self._sessions() as s:
            q = select(GrantRow).where(GrantRow.account == account)
            if key is not None:
                q = q.where(GrantRow.key == key)
            return [Grant(r.key, r.target_kind, r.target, r.target_generation, r.kfrag, r.expires)
                    for r in s.scalars(q.order_by(GrantRow.id))]

    def reencrypt(self, owner: str, requests: Sequence[tuple[str, bytes]], requester: AuthDevice,
                  context: str, now: int) -> list[tuple[bytes, int]]:
        """Re-encrypt capsules for a live requester holding a grant; audited across accounts."""
        cross = requester.account != owner
        audit = cross or bool(context)
        kfrags: dict[str, tuple[bytes, int]] = {}
        refused = ""
        with self._sessions.begin() as s:
            for key in sorted({k for k, _ in requests}):
                # A device of another account needs a grant to that account; the owner's own
                # devices may hold a device grant or the grant to their own account.
                targets = [("account", requester.account)]
                if not cross:
                    targets.insert(0, ("device", requester.id))
                row = None
                for kind, target in targets:
                    row = s.scalars(select(GrantRow).where(
                        GrantRow.account == owner, GrantRow.key == key,
                        GrantRow.target_kind == kind, GrantRow.target == target)).first()
                    if row is not None:
                        break
                # The account's own grant to a shared key "SCOPE/..." serves only the owner's
                # devices that have SCOPE (documents/..., messages/...).
                scope = key.split("/", 1)[0] if "/" in key else None
                needs_scope = (not cross and row is not None and row.target_kind == "account"
                               and scope is not None and scope not in requester.scopes)
                reason = ("device removed" if not requester.live
                          else "no grant" if row is None
                          else f"no {scope} scope" if needs_scope
                          else "grant expired" if row.expires is not None and row.expires <= now
                          else "")
                if audit:
                    self._audit(s, owner, key, requester, context, not reason, reason, now)
                if row is None or reason:
                    refused = key
                    break
                kfrags[key] = (row.kfrag, row.target_generation)
        if refused:  # raised after the commit, so the refusal stays on record
            if not requester.live:
                raise DeviceRemoved("this device has been removed from its account")
            raise Forbidden(f"no grant lets this device read {refused!r} of {owner}")
        return [(self._reencryptor.reencrypt(capsule, kfrags[key][0]), kfrags[key][1])
                for key, capsule in requests]

    def _audit(self, s: Session, owner: str, key: str, requester: AuthDevice, context: str,
               allowed: bool, reason: str, now: int) -> None:
        s.add(AuditRow(account=owner, key=key, grantee_account=requester.account,
                       grantee_device=requester.id, context=context[:256], allowed=allowed,
                       reason=reason, time=now))

    def audit(self, account: str, key_prefix: str = "", limit: int = 1000) -> list[AuditRecord]:
        with self._sessions() as s:
            q = select(AuditRow).where(AuditRow.account == account)
            if key_prefix:
                q = q.where(AuditRow.key.startswith(key_prefix))
            rows = s.scalars(q.order_by(AuditRow.id.desc()).limit(limit))
            return [AuditRecord(r.key, r.grantee_account, r.grantee_device, r.context, r.allowed,
                                r.reason, r.time) for r in rows][::-1]

    # ----------------------------------------------------------------- pairing
    def create_pairing(self, account: str, request: bytes, now: int) -> tuple[str, str]:
        """Store a joining device's request; returns (code, poll token)."""
        with self._sessions.begin() as s:
            if s.get(Account, account) is None:
                raise NotFound(f"no account {account!r} on this service")
            s.execute(delete(PairingRow).where(PairingRow.expires < now))
            raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
            code = f"{raw[:5]}-{raw[5:]}"
            token = secrets.token_urlsafe(24)
            s.add(PairingRow(code=code, account=account, request=request,
                             poll_token=_hash(token), created=now, expires=now + PAIRING_TTL,
                             status="pending"))
            return code, token

    def _check_rate(self, s: Session, account: str, now: int) -> None:
        fails = s.scalar(select(func.count()).select_from(PairingFailureRow).where(
            PairingFailureRow.account == account, PairingFailureRow.time > now - PAIRING_TTL))
        if (fails or 0) >= PAIRING_MAX_FAILURES:
            raise RateLimited("too many wrong pairing codes; wait ten minutes")

    def pairing_request(self, account: str, code: str, now: int) -> bytes:
        """The pending request for ``code``; wrong codes count towards a rate limit."""
        code = code.strip().upper()
        found: bytes | None = None
        with self._sessions.begin() as s:
            self._check_rate(s, account, now)
            row = s.get(PairingRow, code)
            if row is None or row.account != account or row.status != "pending" \
                    or row.expires < now:
                s.add(PairingFailureRow(account=account, time=now))
            else:
                found = row.request
        if found is None:  # raised after the commit, so the failure counts
            raise NotFound("no such pairing code (wrong, used or expired)")
        return found

    def approve_pairing(self, account: str, code: str, device_id: str,
                        entries: Sequence[SignedEntry], grants: Sequence[Grant],
                        now: int) -> None:
        """Single use: mark the code used, append the entries and store the grants, in one
        transaction: a refused approval leaves the chain, the grants and the code as they were."""
        code = code.strip().upper()
        if not entries:
            raise FormatError("nothing to append")
        with self._chain_tx(account) as s:
            row = s.get(PairingRow, code, with_for_update=True)
            if row is None or row.account != account or row.status != "pending" \
                    or row.expires < now:
                raise NotFound("no such pairing code (wrong, used or expired)")
            if json.loads(row.request)["device"]["id"] != device_id:
                raise VerificationError("the approval is for another device than the code's")
            before = self._state(s, account)
            state = self._append(s, account, entries)
            if device_id in before.devices or device_id not in state.devices:
                raise VerificationError("the approval does not add the code's device")
            self._put_grants(s, account, state, grants, now)
            row.status = "approved"
        self._states[account] = state

    def pairing_status(self, code: str, token: str, now: int) -> str:
        with self._sessions() as s:
            row = s.get(PairingRow, code.strip().upper())
            if row is None or not secrets.compare_digest(row.poll_token, _hash(token)):
                raise NotFound("no such pairing")
            if row.status == "pending" and row.expires < now:
                return "expired"
            return row.status

    # ------------------------------------------------------------------- spool
    def spool_put(self, account: str, channel: str, sender: str, body: bytes, now: int,
                  expires: int | None = None) -> int:
        return self.spool_put_many(channel, sender, [(account, body)], now, expires)[0]

    def spool_put_many(self, channel: str, sender: str,
                       messages: Sequence[tuple[str, bytes]], now: int,
                       expires: int | None = None) -> list[int]:
        """Deliver to several accounts' spools in one transaction: all or none."""
        with self._sessions.begin() as s:
            rows = []
            for account, body in messages:
                if s.get(Account, account) is None:
                    raise NotFound(f"no account {account!r} on this service")
                rows.append(SpoolRow(account=account, channel=channel, sender=sender,
                                     body=body, created=now, expires=expires))
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    def spool_get(self, account: str, channel: str, after: int, limit: int,
                  now: int) -> list[SpoolMessage]:
        with self._sessions() as s:
            rows = s.scalars(select(SpoolRow).where(
                SpoolRow.account == account, SpoolRow.channel == channel, SpoolRow.id > after)
                .order_by(SpoolRow.id).limit(limit))
            return [SpoolMessage(r.id, r.sender, r.body, r.created) for r in rows
                    if r.expires is None or r.expires > now]

    def spool_delete(self, account: str, channel: str, message_id: int) -> bool:
        with self._sessions.begin() as s:
            res = s.execute(delete(SpoolRow).where(
                SpoolRow.account == account, SpoolRow.channel == channel,
                SpoolRow.id == message_id))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- records
    def record_put(self, account: str, namespace: str, key: str, value: bytes, now: int,
                   *, create_only: bool = False) -> None:
        try:
            with self._sessions.begin() as s:
                row = s.get(RecordRow, (account, namespace, key))
                if row is not None and create_only:
                    raise Conflict(f"{namespace} record {key!r} already exists")
                if row is None:
                    s.add(RecordRow(account=account, namespace=namespace, key=key, value=value,
                                    created=now))
                else:
                    row.value = value
        except IntegrityError:
            raise Conflict(f"{namespace} record {key!r} already exists") from None

    def record_get(self, account: str, namespace: str, key: str) -> bytes | None:
        with self._sessions() as s:
            row = s.get(RecordRow, (account, namespace, key))
            return None if row is None else row.value

    def record_list(self, account: str, namespace: str) -> list[tuple[str, bytes]]:
        with self._sessions() as s:
            rows = s.scalars(select(RecordRow).where(
                RecordRow.account == account, RecordRow.namespace == namespace)
                .order_by(RecordRow.key))
            return [(r.key, r.value) for r in rows]

    def record_delete(self, account: str, namespace: str, key: str) -> bool:
        with self._sessions.begin() as s:
            res = s.execute(delete(RecordRow).where(
                RecordRow.account == account, RecordRow.namespace == namespace,
                RecordRow.key == key))
            return bool(res.rowcount)  # type: ignore[attr-defined]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _chunks(seq: Sequence[str], n: int) -> list[Sequence[str]]:
    return [seq[i:i + n] for i in range(0, len(seq), n)]

