"""What every part of the service's store shares: sessions, the verified chain state, and
the chain-writing transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .._umbral import ReencryptorCache
from ..chain import ChainState, SignedEntry, verify_chain
from ..crypto import VerifyKey
from ..errors import Conflict, KeysteadError, NotFound, RateLimited
from .config import ServiceConfig
from .models import ChainEntryRow, CounterRow
from .notify import CHANNEL

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
    """Sessions on one engine and a per-process cache of verified chain states.

    Every write runs in :meth:`_write`: on SQLite a ``BEGIN IMMEDIATE`` transaction (the
    write lock is taken before anything is read, so reads inside it see the state the write
    commits on); on PostgreSQL the writes that number things lock what they number (the
    account row, an advisory lock per spool). Topics a write touched are announced after
    its commit: on PostgreSQL by ``NOTIFY`` inside the transaction (every process hears it),
    and to this process's listeners (its notifier) at once."""

    def __init__(self, engine: Engine, config: ServiceConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ServiceConfig()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._states: dict[str, ChainState] = {}
        self._states_lock = threading.Lock()
        self._reencryptor = ReencryptorCache()
        self._pg = engine.dialect.name == "postgresql"
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
        # handler (which sleeps 1-100 ms between tries) keeps a contended write fast.
        self._one_writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        self.listeners: list[Callable[[list[str]], None]] = []

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction; announces its topics after the commit."""
        if self._one_writer is None:
            with self._write_tx() as s:
                yield s
            return
        with self._one_writer, self._write_tx() as s:
            yield s

    @contextmanager
    def _write_tx(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            s.connection(execution_options={"keystead_write": True})
            yield s
            topics = sorted(s.info.get("topics", ()))
            if self._pg:
                for t in topics:
                    s.execute(text("SELECT pg_notify(:c, :t)"), {"c": CHANNEL, "t": t})
        if topics:
            for listener in self.listeners:
                listener(topics)

    @staticmethod
    def _announce(s: Session, topic: str) -> None:
        s.info.setdefault("topics", set()).add(topic)

    def _lock(self, s: Session, name: str) -> None:
        """Serialize writers of ``name`` until the commit (SQLite: the write lock does)."""
        if self._pg:
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})

    def hit(
        self, key: str, limit: int, period: int, now: int, n: int = 1, *, name: str = ""
    ) -> None:
        """Count ``n`` against ``key`` in the current window of ``period`` seconds; over
        ``limit`` is ``RateLimited`` naming the limit, with the seconds until the next window.
        Counted in the database, so every process shares the same limit."""
        window = now // period
        with self._write() as s:
            row = s.get(CounterRow, (key, window), with_for_update=True)
            if row is None:
                try:
                    with s.begin_nested():
                        s.add(CounterRow(key=key, window=window, count=0))
                        s.flush()
                except IntegrityError:
                    pass
                row = s.get(CounterRow, (key, window), with_for_update=True, populate_existing=True)
                assert row is not None
            if row.count + n > limit:
                raise RateLimited(
                    f"limit {name or key} reached ({limit} per {period} s)",
                    limit=name or key,
                    retry_after=period - now % period,
                    hint="wait and try again",
                )
            row.count += n
            if row.count == n and secrets_below(64):
                s.execute(
                    delete(CounterRow).where(CounterRow.window < window - 1, CounterRow.key == key)
                )

    def _entries(self, s: Session, account: str, after: int = -1) -> list[SignedEntry]:
        rows = s.scalars(
            select(ChainEntryRow)
            .where(ChainEntryRow.account == account, ChainEntryRow.seq > after)
            .order_by(ChainEntryRow.seq)
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
        self._remember(account, state)
        return state

    def _remember(self, account: str, state: ChainState) -> None:
        """Keep the newest verified state (threads may race: never step back)."""
        with self._states_lock:
            old = self._states.get(account)
            if old is None or old.seq <= state.seq:
                self._states[account] = state

    @contextmanager
    def _chain_tx(self, account: str) -> Iterator[Session]:
        """A transaction that writes the chain: on any failure the cached state is dropped,
        and a concurrent append (same sequence number) becomes a ``Conflict``."""
        try:
            with self._write() as s:
                yield s
        except IntegrityError:
            with self._states_lock:
                self._states.pop(account, None)
            raise Conflict("the chain moved on meanwhile; sync and retry") from None
        except KeysteadError:
            with self._states_lock:
                self._states.pop(account, None)
            raise


def secrets_below(n: int) -> bool:
    import secrets

    return secrets.randbelow(n) == 0
