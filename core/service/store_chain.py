"""Accounts and their chains, and what request authentication reads: devices and nonces."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..chain import ChainState, SignedEntry
from ..crypto import VerifyKey
from ..errors import Forbidden, FormatError, NotFound
from ._store_base import AuthDevice, StoreBase
from .models import Account, ChainEntryRow, DeviceRow, GrantRow, NonceRow

__all__ = ["ChainStore"]


class ChainStore(StoreBase):
    """The account chain (appends checked by the clients' own verifier) and authentication."""

    def chain_state(self, account: str) -> ChainState:
        with self._sessions() as s:
            return self._state(s, account)

    def chain(self, account: str, after: int = -1) -> list[SignedEntry]:
        with self._sessions() as s:
            if s.get(Account, account) is None:
                raise NotFound(f"no account {account!r} on this service")
            return self._entries(s, account, after)

    def _write_entries(
        self, s: Session, account: str, entries: Sequence[SignedEntry], state: ChainState
    ) -> None:
        for e in entries:
            seq = json.loads(e.entry)["seq"]
            s.add(
                ChainEntryRow(
                    account=account,
                    seq=seq,
                    entry=e.entry,
                    sig=e.signature,
                    device_sig=e.device_signature,
                    new_key_sig=e.new_key_signature,
                )
            )
        rows = {
            r.device_id: r for r in s.scalars(select(DeviceRow).where(DeviceRow.account == account))
        }  # one query, not one a device
        for d in state.devices.values():
            row = rows.get(d.id)
            scopes = json.dumps(list(d.scopes))
            if row is None:
                s.add(
                    DeviceRow(
                        account=account,
                        device_id=d.id,
                        name=d.name,
                        role=d.role,
                        scopes=scopes,
                        signing_key=d.signing_key.raw,
                        live=d.live,
                    )
                )
            else:
                if row.live and not d.live:
                    self._announce(s, f"removed:{account}:{d.id}")
                    # Enforcement: a removed device loses every delegation at once.
                    s.execute(
                        delete(GrantRow).where(
                            GrantRow.account == account,
                            GrantRow.target_kind == "device",
                            GrantRow.target == d.id,
                        )
                    )
                row.live, row.role, row.scopes = d.live, d.role, scopes
        s.flush()
        self._announce(s, f"chain:{account}")

    def append(self, account: str, entries: Sequence[SignedEntry]) -> ChainState:
        """Append entries (already signed by the account key) after checking them."""
        if not entries:
            raise FormatError("nothing to append")
        with self._chain_tx(account) as s:
            state = self._append(s, account, entries)
        self._remember(account, state)
        return state

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

    # ---------------------------------------------------------- authentication
    def device(self, account: str, device_id: str) -> AuthDevice:
        with self._sessions() as s:
            row = s.get(DeviceRow, (account, device_id))
            if row is None:
                raise Forbidden("unknown device")
            return AuthDevice(
                account,
                row.device_id,
                row.name,
                row.role,
                tuple(json.loads(row.scopes)),
                VerifyKey(row.signing_key),
                row.live,
            )

    def use_nonce(self, device: str, nonce: str, now: int, window: int) -> None:
        """Record a nonce; a replay within the window is refused."""
        try:
            with self._write() as s:
                s.add(NonceRow(device=device, nonce=nonce, time=now))
                s.flush()
                if secrets.randbelow(64) == 0:
                    s.execute(delete(NonceRow).where(NonceRow.time < now - 2 * window))
        except IntegrityError:
            raise Forbidden("replayed request") from None
