"""Bundles: a whole account change (chain entries, grants, items, recovery blob) applied in
one transaction on top of the chain head it was built from. See docs/PROTOCOL.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..chain import ChainState, SignedEntry, check_name, verify_chain
from ..errors import Conflict, FormatError
from ..items import SealedItem
from .models import Account, GrantRow
from .store_chain import ChainStore
from .store_data import DataStore
from .store_grants import Grant, GrantStore

__all__ = ["Bundle", "BundleStore", "MAX_RECOVERY_BLOB"]

MAX_RECOVERY_BLOB = 256 * 1024
"""The recovery blob is the account secrets sealed to the recovery key: small, bounded."""


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle (see :mod:`keystead.core.bundle` for how a device builds one)."""

    base_seq: int
    base_head: str
    entries: Sequence[SignedEntry]
    grants: Sequence[Grant]
    deletes: Sequence[tuple[str, str, str]]
    items: Sequence[tuple[str, SealedItem]]
    recovery_blob: bytes | None


class BundleStore(ChainStore, GrantStore, DataStore):
    """Applies bundles and account creation, each in one transaction."""

    def create_account(self, account: str, bundle: Bundle, now: int) -> ChainState:
        """A new account: its chain, first device's grants, first items and recovery blob."""
        check_name(account, "account name")
        if bundle.recovery_blob is None:
            raise FormatError("a new account needs its recovery blob")
        state = verify_chain(bundle.entries, account=account)
        admins = {d.id for d in state.live_devices if d.role == "admin"}
        try:
            with self._write() as s:
                s.add(
                    Account(
                        name=account,
                        created=now,
                        item_seq=0,
                        recovery_blob=_blob(bundle.recovery_blob),
                    )
                )
                s.flush()
                self._write_entries(s, account, bundle.entries, state)
                self._rest(s, account, state, bundle, admins, now)
        except IntegrityError:
            raise Conflict(f"account {account!r} already exists") from None
        self._remember(account, state)
        return state

    def apply_bundle(
        self, account: str, bundle: Bundle, writer: str | None, now: int
    ) -> ChainState:
        """Apply ``bundle`` on top of its base head, or nothing. ``writer`` is the requesting
        admin device (None: the recovery key authorized it, and the device it adds writes)."""
        with self._chain_tx(account) as s:
            state = self._state(s, account)
            if (state.seq, state.head) != (bundle.base_seq, bundle.base_head):
                if _already_applied(state, bundle):
                    return state  # a resend whose answer was lost
                raise Conflict(
                    "the chain moved on since this change was built; sync and build it again"
                )
            new = self._append(s, account, bundle.entries) if bundle.entries else state
            if writer is None:
                added = {d.id for d in new.live_devices if d.id not in state.devices}
                writers = {d for d in added if new.devices[d].role == "admin"}
            else:
                writers = {writer}
            if new.key_generation != state.key_generation:
                # Every kfrag was signed by the old signer: the bundle re-makes what stays.
                s.execute(delete(GrantRow).where(GrantRow.account == account))
            self._rest(s, account, new, bundle, writers, now)
        self._remember(account, new)
        return new

    def _rest(
        self,
        s: Session,
        account: str,
        state: ChainState,
        bundle: Bundle,
        writers: set[str],
        now: int,
    ) -> None:

        for key, kind, target in bundle.deletes:
            s.execute(
                delete(GrantRow).where(
                    GrantRow.account == account,
                    GrantRow.key == key,
                    GrantRow.target_kind == kind,
                    GrantRow.target == target,
                )
            )
        self._prune_grants(s, account, state)
        self._put_grants(s, account, state, bundle.grants, now)
        by_collection: dict[str, list[SealedItem]] = {}
        for coll, item in bundle.items:
            by_collection.setdefault(coll, []).append(item)
        for coll, items in sorted(by_collection.items()):
            self._put_items(s, account, state, coll, items, writers, lambda t: self._announce(s, t))
        if bundle.recovery_blob is not None:
            s.execute(
                update(Account)
                .where(Account.name == account)
                .values(recovery_blob=_blob(bundle.recovery_blob))
            )


def _already_applied(state: ChainState, bundle: Bundle) -> bool:
    start = bundle.base_seq + 1
    digests = [e.digest for e in bundle.entries]
    return (
        bool(digests)
        and state.digests[start : start + len(digests)] == tuple(digests)
        and state.digests[bundle.base_seq] == bundle.base_head
    )


def _blob(blob: bytes) -> bytes:
    if not 105 < len(blob) <= MAX_RECOVERY_BLOB:
        raise FormatError(f"the recovery blob is 106 bytes to {MAX_RECOVERY_BLOB // 1024} KiB")
    return blob
