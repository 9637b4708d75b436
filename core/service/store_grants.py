"""Grants (kfrags verified against the owner's chain), re-encryption and its audit trail."""

from __future__ import annotations

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

class GrantStore(StoreBase):
    """Delegations stored after verification; re-encryption only for a live grantee."""

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
        with self._write() as s:
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
        with self._write() as s:
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
        kfrags = self.reencrypt_grants(owner, {k for k, _ in requests}, requester, context, now)
        return [(self._reencryptor.reencrypt(capsule, kfrags[key][0]), kfrags[key][1])
                for key, capsule in requests]

    def reencrypt_grants(self, owner: str, keys: set[str], requester: AuthDevice,
                         context: str, now: int) -> dict[str, tuple[bytes, int]]:
        """The database half of :meth:`reencrypt`: the (kfrag, generation) of each key for
        this requester, or the refusal (audited). The service does the CPU half in its
        worker pool."""
        cross = requester.account != owner
        audit = cross or bool(context)
        kfrags: dict[str, tuple[bytes, int]] = {}
        refused = ""
        with self._write() as s:
            for key in sorted(keys):
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
        return kfrags

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
