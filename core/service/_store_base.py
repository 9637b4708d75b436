"""What every part of the service's store shares: sessions, the verified chain state, and
the chain-writing transaction."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .._umbral import ReencryptorCache
from ..chain import ChainState, SignedEntry, verify_chain
from ..crypto import VerifyKey
from ..errors import Conflict, Forbidden, KeysteadError, NotFound, RateLimited
from .config import ServiceConfig
from .db import Prepared, driver_error
from .models import ChainEntryRow, CounterRow, NonceRow
from .notify import CHANNEL

__all__ = ["AuthDevice", "Nonce", "Replayed", "StoreBase"]

_NONCE = insert(NonceRow)
_SQLITE_NONCE = "INSERT INTO nonces (device, nonce, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_PG_NONCES = (
    "INSERT INTO nonces (device, nonce, time) "
    "SELECT * FROM unnest(%(d)s::varchar[], %(n)s::varchar[], %(t)s::bigint[]) "
    "ON CONFLICT DO NOTHING RETURNING device, nonce"
)

CHECKPOINT_EVERY = 256
"""SQLite write transactions between two checkpoints (a few MiB of WAL at most)."""

_ENTRIES = (
    select(
        ChainEntryRow.entry, ChainEntryRow.sig, ChainEntryRow.device_sig, ChainEntryRow.new_key_sig
    )
    .where(ChainEntryRow.account == bindparam("a"), ChainEntryRow.seq > bindparam("after"))
    .order_by(ChainEntryRow.seq)
)

Nonce = tuple[str, str, int, int]
"""What recording a request's nonce needs: (device key, nonce, now, window)."""


class Replayed(Forbidden):
    """A request whose nonce this service has seen within the time window."""

    def __init__(self) -> None:
        super().__init__("replayed request")


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
        self._auth_devices: dict[tuple[object, ...], AuthDevice] = {}
        self._states_lock = threading.Lock()
        self._reencryptor = ReencryptorCache()
        self._pg = engine.dialect.name == "postgresql"
        # SQLite has one writer at a time; queueing writers here instead of in SQLite's busy
        # handler (which sleeps 1-100 ms between tries) keeps a contended write fast.
        self._one_writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        self.listeners: list[Callable[[list[str]], None]] = []
        self._nonces = GroupCommit(self._flush_nonces)
        self._device_read: Prepared | None = None
        self._changes_read: Prepared | None = None
        self._spool_read: Prepared | None = None
        self._writes = 0
        self._checkpointing = threading.Lock()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction; announces its topics after the commit."""
        if self._one_writer is None:
            with self._write_tx() as s:
                yield s
            return
        with self._one_writer, self._write_tx() as s:
            yield s
        self._checkpoint()

    def _checkpoint(self) -> None:
        """SQLite: every ``CHECKPOINT_EVERY`` write transactions, copy the WAL into the
        database (PASSIVE: writers go on meanwhile), outside the write lock, in the thread
        that came last (one at a time). SQLite's own automatic checkpoint ran inside a
        commit, holding the write lock through its fsync."""
        self._writes += 1
        if self._writes % CHECKPOINT_EVERY or not self._checkpointing.acquire(blocking=False):
            return
        try:
            conn = self.engine.raw_connection()
            try:
                conn.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA wal_checkpoint(PASSIVE)"
                )
            finally:
                conn.close()
        finally:
            self._checkpointing.release()

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

    def _lock(self, s: Session | Connection, name: str) -> None:
        """Serialize writers of ``name`` until the commit (SQLite: the write lock does)."""
        if self._pg:
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})

    def use_nonce(self, device: str, nonce: str, now: int, window: int) -> None:
        """Record a nonce; a replay within the window is refused (``Replayed``).

        Requests that arrive together share one transaction (group commit): the first
        thread in writes every nonce waiting at that moment in one insert and one commit,
        the others wait for that commit. Each request still goes on only after the
        transaction holding its nonce committed, and the primary key of the nonces table,
        which every process on the database shares, is still what refuses a replay: a
        nonce seen by any process, before or after a restart, is refused."""
        self._nonces.record((device, nonce, now, window))

    def _flush_nonces(self, batch: Sequence[Nonce]) -> set[int]:
        """Insert a batch of nonces in one transaction; the indexes of the replayed ones."""
        replays: set[int] = set()
        rows: list[dict[str, Any]] = []
        first: dict[tuple[str, str], int] = {}
        for i, (device, nonce, now, _) in enumerate(batch):
            if (device, nonce) in first:  # the same nonce twice in one batch
                replays.add(i)
                continue
            first[(device, nonce)] = i
            rows.append({"device": device, "nonce": nonce, "time": now})
        with self._write_conn() as conn:
            # On the driver's cursor, one fixed statement (SQLAlchemy compiling a many-row
            # INSERT anew for every batch cost more than the rest of a signed read)
            inserted: set[tuple[str, str]] = set()
            try:
                cur: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                if self._pg:  # one statement, one round trip; RETURNING names the new ones
                    cur.execute(
                        _PG_NONCES,
                        {
                            "d": [r["device"] for r in rows],
                            "n": [r["nonce"] for r in rows],
                            "t": [r["time"] for r in rows],
                        },
                    )
                    inserted.update((d, n) for d, n in cur.fetchall())
                else:  # SQLite: a row at a time costs microseconds
                    for r in rows:
                        cur.execute(_SQLITE_NONCE, (r["device"], r["nonce"], r["time"]))
                        if cur.rowcount == 1:
                            inserted.add((r["device"], r["nonce"]))
                cur.close()
            except Exception as e:  # as SQLAlchemy would raise it; the connection is dropped
                conn.invalidate(e)
                raise driver_error(self.engine, e, "INSERT INTO nonces") from e
            now, window = max(b[2] for b in batch), max(b[3] for b in batch)
            if secrets.randbelow(64) < len(batch):  # on average once in 64 requests
                conn.execute(delete(NonceRow).where(NonceRow.time < now - 2 * window))
        replays.update(i for key, i in first.items() if key not in inserted)
        return replays

    @contextmanager
    def _write_core(self) -> Iterator[tuple[Connection, set[str]]]:
        """:meth:`_write` on a Core connection: the topics to announce go in the set."""
        topics: set[str] = set()
        with self._write_conn() as conn:
            yield conn, topics
            if self._pg:
                for t in sorted(topics):
                    conn.execute(text("SELECT pg_notify(:c, :t)"), {"c": CHANNEL, "t": t})
        if topics:
            for listener in self.listeners:
                listener(sorted(topics))

    @contextmanager
    def _write_conn(self) -> Iterator[Connection]:
        """A Core write transaction (no ORM session), with the write lock on SQLite."""
        lock = self._one_writer
        with lock if lock is not None else nullcontext():
            conn = self.engine.connect().execution_options(keystead_write=True)
            with conn, conn.begin():
                yield conn
        if lock is not None:
            self._checkpoint()

    @staticmethod
    def _record_nonce(conn: Any, device: str, nonce: str, now: int, window: int) -> None:
        """Insert the nonce in the caller's write transaction (a Connection or a Session);
        the primary key refuses a replay. Now and then, nonces older than any request the
        window still accepts are pruned."""
        try:  # (a failed statement ends the caller's transaction: a replay stores nothing)
            conn.execute(_NONCE, {"device": device, "nonce": nonce, "time": now})
        except IntegrityError:
            raise Replayed() from None
        if secrets_below(64):
            conn.execute(delete(NonceRow).where(NonceRow.time < now - 2 * window))

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

    def _entries(self, s: Session | Connection, account: str, after: int = -1) -> list[SignedEntry]:
        rows = s.execute(_ENTRIES, {"a": account, "after": after})
        return [
            SignedEntry(
                bytes(e),
                bytes(sig),
                None if d is None else bytes(d),
                None if n is None else bytes(n),
            )
            for e, sig, d, n in rows
        ]

    def _state(self, s: Session | Connection, account: str) -> ChainState:
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


def _opt(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


def secrets_below(n: int) -> bool:
    return secrets.randbelow(n) == 0


class _Pending:
    __slots__ = ("item", "outcome")

    def __init__(self, item: Nonce) -> None:
        self.item = item
        self.outcome: BaseException | bool | None = None


class GroupCommit:
    """Many threads' nonces, written by whichever thread finds nobody writing (the leader):
    it takes every nonce waiting, ``flush`` writes them in one transaction, then every
    waiter of that batch learns its own outcome. No thread of its own, no timer: a nonce
    waits at most for the batch in flight and its own."""

    MAX_BATCH = 500

    def __init__(self, flush: Callable[[Sequence[Nonce]], set[int]]) -> None:
        self._flush = flush
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._busy = False

    def record(self, item: Nonce) -> None:
        mine = _Pending(item)
        with self._cond:
            self._pending.append(mine)
            while mine.outcome is None:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch = self._pending[: self.MAX_BATCH]
                del self._pending[: self.MAX_BATCH]
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if mine.outcome is not True:
            assert isinstance(mine.outcome, BaseException)
            raise mine.outcome

    def _write(self, batch: list[_Pending]) -> None:
        try:
            replays = self._flush([p.item for p in batch])
        except BaseException as e:  # the whole batch failed (database down...)
            for p in batch:
                p.outcome = e
            return
        for i, p in enumerate(batch):
            p.outcome = Replayed() if i in replays else True
