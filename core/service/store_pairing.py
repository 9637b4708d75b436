"""Pairing: a joining device's request under a short code, approved in one transaction."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..chain import SignedEntry
from ..errors import FormatError, NotFound, RateLimited, VerificationError
from .models import Account, PairingFailureRow, PairingRow
from .store_chain import ChainStore
from .store_grants import Grant, GrantStore

__all__ = ["PAIRING_MAX_FAILURES", "PAIRING_TTL", "PairingStore"]

PAIRING_TTL = 600
PAIRING_MAX_FAILURES = 10
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class PairingStore(ChainStore, GrantStore):
    """Codes are single use, expire, and wrong guesses are rate limited per account."""

    def create_pairing(self, account: str, request: bytes, now: int) -> tuple[str, str]:
        """Store a joining device's request; returns (code, poll token)."""
        with self._write() as s:
            if s.get(Account, account) is None:
                raise NotFound(f"no account {account!r} on this service")
            s.execute(delete(PairingRow).where(PairingRow.expires < now))
            raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
            code = f"{raw[:5]}-{raw[5:]}"
            token = secrets.token_urlsafe(24)
            s.add(
                PairingRow(
                    code=code,
                    account=account,
                    request=request,
                    poll_token=_hash(token),
                    created=now,
                    expires=now + PAIRING_TTL,
                    status="pending",
                )
            )
            return code, token

    def _check_rate(self, s: Session, account: str, now: int) -> None:
        fails = s.scalar(
            select(func.count())
            .select_from(PairingFailureRow)
            .where(PairingFailureRow.account == account, PairingFailureRow.time > now - PAIRING_TTL)
        )
        if (fails or 0) >= PAIRING_MAX_FAILURES:
            raise RateLimited("too many wrong pairing codes; wait ten minutes")

    def pairing_request(self, account: str, code: str, now: int) -> bytes:
        """The pending request for ``code``; wrong codes count towards a rate limit."""
        code = code.strip().upper()
        found: bytes | None = None
        with self._write() as s:
            self._check_rate(s, account, now)
            row = s.get(PairingRow, code)
            if (
                row is None
                or row.account != account
                or row.status != "pending"
                or row.expires < now
            ):
                s.add(PairingFailureRow(account=account, time=now))
            else:
                found = row.request
        if found is None:  # raised after the commit, so the failure counts
            raise NotFound("no such pairing code (wrong, used or expired)")
        return found

    def approve_pairing(
        self,
        account: str,
        code: str,
        device_id: str,
        entries: Sequence[SignedEntry],
        grants: Sequence[Grant],
        now: int,
    ) -> None:
        """Single use: mark the code used, append the entries and store the grants, in one
        transaction: a refused approval leaves the chain, the grants and the code as they were."""
        code = code.strip().upper()
        if not entries:
            raise FormatError("nothing to append")
        with self._chain_tx(account) as s:
            row = s.get(PairingRow, code, with_for_update=True)
            if (
                row is None
                or row.account != account
                or row.status != "pending"
                or row.expires < now
            ):
                raise NotFound("no such pairing code (wrong, used or expired)")
            if json.loads(row.request)["device"]["id"] != device_id:
                raise VerificationError("the approval is for another device than the code's")
            before = self._state(s, account)
            state = self._append(s, account, entries)
            if device_id in before.devices or device_id not in state.devices:
                raise VerificationError("the approval does not add the code's device")
            self._put_grants(s, account, state, grants, now)
            row.status = "approved"
        self._remember(account, state)

    def pairing_status(self, code: str, token: str, now: int) -> str:
        with self._sessions() as s:
            row = s.get(PairingRow, code.strip().upper())
            if row is None or not secrets.compare_digest(row.poll_token, _hash(token)):
                raise NotFound("no such pairing")
            if row.status == "pending" and row.expires < now:
                return "expired"
            return row.status


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
