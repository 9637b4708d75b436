"""Reading an account's audit trail at its service, a page at a time (admin devices).

Rows come oldest first with ids: pass the last id as ``after`` to read on, so no
number of newer rows can push an older one out of reach. A requester that holds
a grant has one row per request (with ``capsule``, the SHA-256 of what it had
re-encrypted, next to the ``context`` it claimed); refusals of requesters without
a grant are counted (``count``) into one row per account, key, reason and hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import FormatError

if TYPE_CHECKING:
    from .device import Device

__all__ = ["AuditPage", "AuditRecord", "read_audit"]

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditRecord:
    id: int
    key: str
    account: str
    device: str
    context: str
    allowed: bool
    reason: str
    time: int
    count: int
    capsule: str

    @classmethod
    def from_json(cls, r: Any) -> AuditRecord:
        try:
            rec = cls(
                r["id"],
                r["key"],
                r["grantee_account"],
                r["grantee_device"],
                r["context"],
                r["allowed"],
                r["reason"],
                r["time"],
                r.get("count", 1),
                r.get("capsule", ""),
            )
        except (KeyError, TypeError):
            raise FormatError("the service answered with a malformed audit record") from None
        types = (int, str, str, str, str, bool, str, int, int, str)
        if not all(isinstance(v, t) for v, t in zip(rec.__dict__.values(), types, strict=True)):
            raise FormatError("the service answered with a malformed audit record")
        return rec


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    next_after: int | None
    """Pass as ``after`` for the next page; None when this page was the last."""


def read_audit(
    device: Device,
    *,
    prefix: str = "",
    after: int = 0,
    limit: int = MAX_PAGE,
    grantee: str | None = None,
    outcome: str | None = None,
) -> AuditPage:
    """One page of this account's audit trail (``outcome``: "allowed" or "refused")."""
    from .client import path

    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit is 1 to {MAX_PAGE}")
    if outcome not in (None, "allowed", "refused"):
        raise ValueError("outcome is 'allowed' or 'refused'")
    resp = device.client.get(
        path("accounts", device.account, "audit"),
        params={
            "prefix": prefix or None,
            "after": after or None,
            "limit": limit,
            "grantee": grantee,
            "outcome": outcome,
        },
    )
    raw = resp.get("records") if isinstance(resp, dict) else None
    if not isinstance(raw, list):
        raise FormatError("the service answered with a malformed audit page")
    records = [AuditRecord.from_json(r) for r in raw]
    more = len(records) == limit
    return AuditPage(records, records[-1].id if more and records else None)
