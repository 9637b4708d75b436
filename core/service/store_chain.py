"""Accounts and their chains, and what request authentication reads: devices and nonces."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..chain import ChainState, SignedEntry
from ..crypto import VerifyKey
from ..errors import DeviceRemoved, Forbidden, FormatError, NotFound
from ..requests import RequestAuth
from ._store_base import AuthDevice, Nonce, Replayed, StoreBase
from .db import Prepared
from .models import Account, ChainEntryRow, DeviceRow, GrantRow

__all__ = ["ChainStore"]

T = TypeVar("T")

_DEVICE = select(
    DeviceRow.name, DeviceRow.role, DeviceRow.scopes, DeviceRow.signing_key, DeviceRow.live
).where(DeviceRow.account == bindparam("a"), DeviceRow.device_id == bindparam("d"))


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
        """The device row, read from the database on every request (another process may
        have removed the device a moment ago); what is derived from the row (the parsed
        key, the scopes) is kept per process, keyed by the row's whole content."""
        if self._device_read is None:
            self._device_read = Prepared(_DEVICE, self.engine)
        rows = self._device_read.all({"a": account, "d": device_id})
        if not rows:
            raise Forbidden("unknown device")
        name, role, scopes, key, live = rows[0]
        cache_key = (account, device_id, name, role, scopes, bytes(key), bool(live))
        dev = self._auth_devices.get(cache_key)
        if dev is None:
            dev = AuthDevice(
                account,
                device_id,
                name,
                role,
                tuple(json.loads(scopes)),
                VerifyKey(bytes(key)),
                bool(live),
            )
            if len(self._auth_devices) >= 10_000:
                self._auth_devices.clear()
            self._auth_devices[cache_key] = dev
        return dev

    def authenticate(
        self,
        auth: RequestAuth,
        *,
        method: str,
        origin: str,
        path: str,
        body: bytes,
        now: int,
        max_skew: int,
        live: bool = True,
        account: str | None = None,
        scope: str | None = None,
        admin: bool = False,
        then: Callable[[AuthDevice, Nonce | None], T] | None = None,
        nonce_in_then: bool = False,
    ) -> tuple[AuthDevice, T | None]:
        """Verify a signed request and record its nonce, then run ``then``: one trip to the
        thread pool and one connection for all of it.

        With ``nonce_in_then`` the nonce is handed to ``then``, a write that records it in
        its own transaction (one commit instead of two); if ``then`` fails the nonce is
        recorded on its own, so a refused request cannot be replayed later either."""
        device = self.device(auth.account, auth.device)
        auth.verify(
            device.signing_key,
            method=method,
            origin=origin,
            path=path,
            body=body,
            now=now,
            max_skew=max_skew,
        )
        if live and not device.live:
            raise DeviceRemoved("this device has been removed from its account")
        nonce: Nonce = (f"{auth.account}/{auth.device}", auth.nonce, now, max_skew)
        if not (then is not None and nonce_in_then):
            self.use_nonce(*nonce)
        try:
            if account is not None and device.account != account:
                raise Forbidden("this device belongs to another account")
            if scope is not None and scope not in device.scopes:
                raise Forbidden(f"this device does not have the {scope!r} scope")
            if admin and device.role != "admin":
                raise Forbidden("only an admin device may do this")
            if then is None:
                return device, None
            return device, then(device, nonce if nonce_in_then else None)
        except Replayed:
            raise
        except BaseException:
            if nonce_in_then:
                self.use_nonce(*nonce)
            raise
