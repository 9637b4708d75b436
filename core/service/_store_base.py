"""What every part of the service's store shares: sessions, the verified chain state, and
the chain-writing transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .._umbral import ReencryptorCache
from ..chain import ChainState, SignedEntry, verify_chain
from ..crypto import VerifyKey
from ..errors import Conflict, KeysteadError, NotFound
from .models import ChainEntryRow

__all__ = ["AuthDevice", "StoreBase"]


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


class StoreBase:
    """Sessions on one engine and a per-process cache of verified chain states."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._states: dict[str, ChainState] = {}
        self._reencryptor = ReencryptorCache()

    def _entries(self, s: Session, account: str, after: int = -1) -> list[SignedEntry]:
        rows = s.scalars(
            select(ChainEntryRow).where(ChainEntryRow.account == account,
                                        ChainEntryRow.seq > after).order_by(ChainEntryRow.seq)
        )
        return [SignedEntry(r.entry, r.sig, r.device_sig, r.new_key_sig) for r in rows]

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
