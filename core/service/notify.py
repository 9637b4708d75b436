"""Waking long polls: one notifier per process, fed by commits in this process and, on
PostgreSQL, by ``LISTEN/NOTIFY`` from every process on the database.

A waiter costs a future and its socket, never a polling loop. A wake-up is only a hint
("look again"): the waiter re-reads the database, so a lost or duplicated notification
costs nothing but a query; after the listening connection was lost every waiter is woken,
since notifications may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = ["CHANNEL", "Notifier", "PostgresListener"]

CHANNEL = "keystead"
log = logging.getLogger("keystead.service")


class _Waiter:
    __slots__ = ("future", "loop", "topics")

    def __init__(self, topics: tuple[str, ...]) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.topics = topics


def _wake(w: _Waiter) -> None:
    if not w.future.done():
        w.future.set_result(None)


class Notifier:
    """Topics are strings (``spool:ACCOUNT:CHANNEL``, ``record:ACCOUNT:NAMESPACE``...).

    ``publish`` is thread-safe (the store calls it from worker threads after a commit);
    ``close`` answers every waiter at once, for a quick stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_topic: dict[str, set[_Waiter]] = {}
        self.closed = False

    @property
    def waiting(self) -> int:
        with self._lock:
            return len({w for ws in self._by_topic.values() for w in ws})

    def subscribe(self, topics: Iterable[str]) -> _Waiter:
        """Register before reading the database, so a commit in between is not missed."""
        w = _Waiter(tuple(topics))
        with self._lock:
            for t in w.topics:
                self._by_topic.setdefault(t, set()).add(w)
            if self.closed:
                _wake(w)
        return w

    def unsubscribe(self, w: _Waiter) -> None:
        with self._lock:
            for t in w.topics:
                ws = self._by_topic.get(t)
                if ws is not None:
                    ws.discard(w)
                    if not ws:
                        del self._by_topic[t]

    def publish(self, topics: Iterable[str]) -> None:
        with self._lock:
            found = {w for t in topics for w in self._by_topic.get(t, ())}
        for w in found:
            _call(w.loop, _wake, w)

    def wake_all(self) -> None:
        with self._lock:
            found = {w for ws in self._by_topic.values() for w in ws}
        for w in found:
            _call(w.loop, _wake, w)

    def close(self) -> None:
        """Stop: every waiter answers now, and new ones do not wait."""
        self.closed = True
        self.wake_all()

    async def wait(
        self, w: _Waiter, timeout: float, disconnected: Callable[[], Awaitable[Any]] | None = None
    ) -> str:
        """Until a publish on one of the waiter's topics ("event"), the timeout ("timeout"),
        a stop ("closed"), or the client going away ("gone": ``disconnected`` returned)."""
        if self.closed:
            return "closed"
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        try:
            aws: set[asyncio.Future[Any]] = {w.future}
            if watcher is not None:
                aws.add(watcher)
            await asyncio.wait(aws, timeout=max(timeout, 0), return_when=FIRST_COMPLETED)
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
        if self.closed:
            return "closed"
        if watcher is not None and watcher.done() and not watcher.cancelled():
            watcher.exception()  # retrieved: a failed receive also means the client is gone
            return "gone"
        return "event" if w.future.done() else "timeout"


def _call(loop: asyncio.AbstractEventLoop, fn: Callable[[_Waiter], None], w: _Waiter) -> None:
    try:
        loop.call_soon_threadsafe(fn, w)
    except RuntimeError:  # that loop has closed (a test's per-request loop)
        pass


class PostgresListener:
    """One thread and one connection per process, ``LISTEN keystead``; every notification
    is published to the notifier. Reconnects by itself (then wakes every waiter)."""

    def __init__(self, conninfo: str, notifier: Notifier) -> None:
        self._conninfo = conninfo
        self._notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keystead-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg

        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._notifier.wake_all()  # anything missed while we were away
                    delay = 0.2
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            self._notifier.publish([n.payload])
            except psycopg.Error as e:
                self.connected.clear()
                log.warning(
                    "notification listener: %s",
                    str(e).splitlines()[0] if str(e) else type(e).__name__,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        self.connected.clear()
