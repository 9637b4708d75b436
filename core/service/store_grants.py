"""Grants (kfrags verified against the owner's chain), re-encryption and its audit trail."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .._umbral import PREPublicKey, verify_kfrag
from ..chain import ChainState
from ..errors import DeviceRemoved, Forbidden, FormatError, VerificationError
from ._store_base import AuthDevice, StoreBase
from .models import AuditRow, GrantRow

__all__ = ["AuditRecord", "Grant", "GrantStore"]


@dataclass(frozen=True)
class Grant:
    """A stored delegation: a kfrag from ``account``'s key ``key`` to a device or account."""

    key: str
    epoch: int
    target_kind: str
    target: str
    target_generation: int
    kfrag: bytes
    expires: int | None


@dataclass(frozen=True)
class AuditRecord:
    key: str
    grantee_account: str
    grantee_device: str
    context: str
    allowed: bool
    reason: str
    time: int
    id: int = 0
    count: int = 1
    capsule: str = ""


COUNT_WINDOW = 3600  # seconds one aggregated row of refusals covers


class GrantStore(StoreBase):
    """Delegations stored after verification; re-encryption only for a live grantee."""

    def _receiving_key(
        self, s: Session, target_kind: str, target: str, generation: int, owner: ChainState
    ) -> PREPublicKey:
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
        with self._write() as s:
            self._put_grants(s, account, self._state(s, account), grants, now)

    def _put_grants(
        self, s: Session, account: str, owner: ChainState, grants: Sequence[Grant], now: int
    ) -> None:
        for g in grants:
            coll = owner.collection(g.key)
            if coll.kind == "items" and (
                g.target_kind != "device" or g.epoch != coll.current_epoch
            ):
                raise VerificationError(
                    "an items collection is granted to devices, on its newest epoch only"
                )
            receiving = self._receiving_key(s, g.target_kind, g.target, g.target_generation, owner)
            verify_kfrag(
                g.kfrag,
                signer=owner.kfrag_signer,
                delegating=coll.epoch(g.epoch).public_key,
                receiving=receiving,
            )
            s.execute(
                delete(GrantRow).where(
                    GrantRow.account == account,
                    GrantRow.key == g.key,
                    GrantRow.epoch == g.epoch,
                    GrantRow.target_kind == g.target_kind,
                    GrantRow.target == g.target,
                )
            )
            s.add(
                GrantRow(
                    account=account,
                    key=g.key,
                    epoch=g.epoch,
                    target_kind=g.target_kind,
                    target=g.target,
                    target_generation=g.target_generation,
                    kfrag=g.kfrag,
                    expires=g.expires,
                    created=now,
                )
            )

    def _prune_grants(self, s: Session, account: str, state: ChainState) -> None:
        """Device grants live on an items collection's newest epoch only."""
        for coll in state.collections.values():
            if coll.kind == "items":
                s.execute(
                    delete(GrantRow).where(
                        GrantRow.account == account,
                        GrantRow.key == coll.name,
                        GrantRow.epoch != coll.current_epoch,
                    )
                )

    def delete_grant(self, account: str, key: str, target_kind: str, target: str) -> bool:
        with self._write() as s:
            res = s.execute(
                delete(GrantRow).where(
                    GrantRow.account == account,
                    GrantRow.key == key,
                    GrantRow.target_kind == target_kind,
                    GrantRow.target == target,
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def grants(self, account: str, key: str | None = None) -> list[Grant]:
        with self._sessions() as s:
            q = select(GrantRow).where(GrantRow.account == account)
            if key is not None:
                q = q.where(GrantRow.key == key)
            return [
                Grant(
                    r.key, r.epoch, r.target_kind, r.target, r.target_generation, r.kfrag, r.expires
                )
                for r in s.scalars(q.order_by(GrantRow.id))
            ]

    def reencrypt(
        self,
        owner: str,
        requests: Sequence[tuple[str, int, bytes]],
        requester: AuthDevice,
        context: str,
        now: int,
    ) -> list[tuple[bytes, int]]:
        """Re-encrypt capsules for a live requester holding a grant on the capsule's epoch;
        audited across accounts (the service itself does the CPU half in its worker pool)."""
        kfrags = self.reencrypt_grants(owner, requests, requester, context, now)
        return [
            (self._reencryptor.reencrypt(capsule, kfrags[(key, epoch)][0]), kfrags[(key, epoch)][1])
            for key, epoch, capsule in requests
        ]

    def reencrypt_grants(
        self,
        owner: str,
        requests: Sequence[tuple[str, int, bytes]],
        requester: AuthDevice,
        context: str,
        now: int,
    ) -> dict[tuple[str, int], tuple[bytes, int]]:
        """The database half of :meth:`reencrypt`: the (kfrag, generation) of each (key,
        epoch) for this requester, or the refusal.

        A requester that holds a grant gets one audit row per request (with the digest of
        the capsules, whatever context it claims); one without is counted into one row per
        run of refusals and hour, so refused requests cannot flood the owner's log."""
        cross = requester.account != owner
        audit = cross or bool(context)
        kfrags: dict[tuple[str, int], tuple[bytes, int]] = {}
        refused = ""
        with self._write() as s:
            state = self._state(s, owner)
            for key, epoch in sorted({(k, e) for k, e, _ in requests}):
                # A device of another account needs a grant to that account; the owner's own
                # devices hold a device grant (items) or the grant to their own account (keys).
                targets = [("account", requester.account)]
                if not cross:
                    targets.insert(0, ("device", requester.id))
                row = None
                for kind, target in targets:
                    row = s.scalars(
                        select(GrantRow).where(
                            GrantRow.account == owner,
                            GrantRow.key == key,
                            GrantRow.epoch == epoch,
                            GrantRow.target_kind == kind,
                            GrantRow.target == target,
                        )
                    ).first()
                    if row is not None:
                        break
                # A grant to an account's shared key "SCOPE/..." serves only devices that
                # have SCOPE (documents/..., messages/...), the owner's and grantees' alike.
                scope = key.split("/", 1)[0] if "/" in key else None
                needs_scope = (
                    row is not None
                    and row.target_kind == "account"
                    and scope is not None
                    and scope not in requester.scopes
                )
                reason = (
                    "device removed"
                    if not requester.live
                    else "no grant"
                    if row is None
                    else f"no {scope} scope"
                    if needs_scope
                    else "grant expired"
                    if row.expires is not None and row.expires <= now
                    else ""
                )
                if audit:
                    digest = hashlib.sha256(
                        b"".join(c for k, e, c in requests if (k, e) == (key, epoch))
                    )
                    if row is None:
                        self._count_refusal(s, owner, key, requester, reason, now)
                    else:
                        self._audit(
                            s,
                            owner,
                            key,
                            requester,
                            context,
                            not reason,
                            reason,
                            now,
                            digest.hexdigest(),
                        )
                if row is None or reason:
                    refused = key
                    break
                kfrags[(key, epoch)] = (row.kfrag, row.target_generation)
            if not refused and cross:
                # An account grant opens sealed keys one at a time (each audited): never the
                # epoch's own data key, which would open every item of the epoch at once.
                for key, epoch, capsule in requests:
                    info = state.collections.get(key)
                    if info is not None and capsule == info.epoch(epoch).capsule:
                        raise Forbidden("an epoch's data key is not re-encrypted across accounts")
        if refused:  # raised after the commit, so the refusal stays on record
            if not requester.live:
                raise DeviceRemoved("this device has been removed from its account")
            raise Forbidden(f"no grant lets this device read {refused!r} of {owner}")
        return kfrags

    def _audit(
        self,
        s: Session,
        owner: str,
        key: str,
        requester: AuthDevice,
        context: str,
        allowed: bool,
        reason: str,
        now: int,
        capsule: str = "",
    ) -> None:
        s.add(
            AuditRow(
                account=owner,
                key=key,
                grantee_account=requester.account,
                grantee_device=requester.id,
                context=context[:256],
                allowed=allowed,
                reason=reason,
                time=now,
                count=1,
                capsule=capsule,
            )
        )

    def _count_refusal(
        self, s: Session, owner: str, key: str, requester: AuthDevice, reason: str, now: int
    ) -> None:
        """Refusals in a row (nothing else logged for this requester account and key
        meanwhile) within an hour share one row and count; otherwise a new row."""
        row = s.scalars(
            select(AuditRow)
            .where(
                AuditRow.account == owner,
                AuditRow.key == key,
                AuditRow.grantee_account == requester.account,
            )
            .order_by(AuditRow.id.desc())
            .limit(1)
        ).first()
        if (
            row is None
            or row.allowed
            or row.capsule
            or row.reason != reason
            or row.time <= now - COUNT_WINDOW
        ):
            s.add(
                AuditRow(
                    account=owner,
                    key=key,
                    grantee_account=requester.account,
                    grantee_device=requester.id,
                    context="",
                    allowed=False,
                    reason=reason,
                    time=now,
                    count=1,
                    capsule="",
                )
            )
        else:
            row.count = min(row.count + 1, 2**31 - 1)

    def audit(
        self,
        account: str,
        key_prefix: str = "",
        *,
        after: int = 0,
        limit: int = 1000,
        grantee: str | None = None,
        allowed: bool | None = None,
    ) -> list[AuditRecord]:
        """Records with id > ``after``, oldest first, at most ``limit``: page forward through
        all of them (a flood of new rows cannot push an old one out of reach)."""
        with self._sessions() as s:
            q = select(AuditRow).where(AuditRow.account == account, AuditRow.id > after)
            if key_prefix:
                q = q.where(AuditRow.key.startswith(key_prefix, autoescape=True))
            if grantee is not None:
                q = q.where(AuditRow.grantee_account == grantee)
            if allowed is not None:
                q = q.where(AuditRow.allowed.is_(allowed))
            rows = s.scalars(q.order_by(AuditRow.id).limit(limit))
            return [
                AuditRecord(
                    r.key,
                    r.grantee_account,
                    r.grantee_device,
                    r.context,
                    r.allowed,
                    r.reason,
                    r.time,
                    r.id,
                    r.count,
                    r.capsule,
                )
                for r in rows
            ]
