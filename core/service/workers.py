"""The CPU pool: re-encryption runs in worker processes, never on the event loop.

Umbral holds the GIL, so a thread would still starve the loop; worker processes do
not. Work is cut into chunks and accounts take turns chunk by chunk (round robin), so
one account's 20,000-capsule requests wait behind nobody and hold nobody up for more than
a chunk. The queue is bounded: past it, a request is refused (429) instead of piling up.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .._umbral import ReencryptorCache
from ..errors import RateLimited

__all__ = ["CpuPool"]

_cache: ReencryptorCache | None = None


def _reencrypt_chunk(work: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """In a worker: re-encrypt (kfrag, capsule) pairs (kfrags stored verified)."""
    global _cache
    if _cache is None:
        _cache = ReencryptorCache()
    return [_cache.reencrypt(capsule, kfrag) for kfrag, capsule in work]


def _exit_with(parent: int) -> None:
    """In a worker: exit when the service process that started it is gone, even killed
    (SIGKILL runs no shutdown, and a worker blocked on the call queue would wait forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="keystead-parent-watch", daemon=True).start()


@dataclass
class _Job:
    chunks: list[list[tuple[bytes, bytes]]]
    result: cf.Future[list[bytes]] = field(default_factory=cf.Future)
    parts: dict[int, list[bytes]] = field(default_factory=dict)
    left: int = 0


class CpuPool:
    """``workers`` processes (0: one thread, for tests and tiny deployments)."""

    def __init__(self, workers: int, chunk: int = 1000, queue_limit: int = 200_000) -> None:
        self.workers, self.chunk, self.queue_limit = workers, max(1, chunk), queue_limit
        self._executor: cf.Executor | None = None
        self._lock = threading.Lock()
        self._queues: OrderedDict[str, deque[tuple[_Job, int]]] = OrderedDict()
        self._inflight = 0
        self.queued = 0  # capsules waiting, for metrics and the bound
        self.done = 0  # capsules re-encrypted, for metrics
        self.on_change: Callable[[CpuPool], None] | None = None

    def _pool(self) -> cf.Executor:
        if self._executor is None:
            if self.workers == 0:
                self._executor = cf.ThreadPoolExecutor(1, thread_name_prefix="keystead-cpu")
            else:
                self._executor = cf.ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with,
                    initargs=(os.getpid(),),
                )
        return self._executor

    def start(self) -> None:
        """Start the workers now (the first request should not pay for it)."""
        pool = self._pool()
        if isinstance(pool, cf.ProcessPoolExecutor):
            list(pool.map(_reencrypt_chunk, [[]] * self.workers))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def reencrypt(
        self, account: str, work: Sequence[tuple[bytes, bytes]]
    ) -> cf.Future[list[bytes]]:
        """Queue (kfrag, capsule) pairs for ``account``; the future holds the cfrags in order."""
        job = _Job([list(work[i : i + self.chunk]) for i in range(0, len(work), self.chunk)])
        job.left = len(job.chunks)
        if not job.chunks:
            job.result.set_result([])
            return job.result
        with self._lock:
            if self.queued + len(work) > self.queue_limit:
                raise RateLimited(
                    "the service is busy re-encrypting (cpu_queue)",
                    limit="cpu_queue",
                    retry_after=1,
                )
            self.queued += len(work)
            q = self._queues.setdefault(account, deque())
            q.extend((job, i) for i in range(len(job.chunks)))
        self._pump()
        return job.result

    def _pump(self) -> None:
        """Start chunks while a worker is free, taking accounts in turn."""
        start: list[tuple[_Job, int]] = []
        with self._lock:
            slots = self.workers + 1 if self.workers else 1  # one queued ahead: no idle gap
            while self._inflight < slots and self._queues:
                account, q = self._queues.popitem(last=False)
                start.append(q.popleft())
                if q:
                    self._queues[account] = q  # to the back of the line
                self._inflight += 1
        for job, i in start:
            fut = self._pool().submit(_reencrypt_chunk, job.chunks[i])
            fut.add_done_callback(functools.partial(self._finished, job, i))
        if self.on_change is not None:
            self.on_change(self)

    def _finished(self, job: _Job, i: int, fut: cf.Future[list[bytes]]) -> None:
        n = len(job.chunks[i])
        with self._lock:
            self._inflight -= 1
            self.queued -= n
            self.done += n
        if not job.result.done():
            exc = fut.exception() if not fut.cancelled() else RuntimeError("cancelled")
            if exc is not None:
                self._drop(job)
                job.result.set_exception(exc)
            else:
                job.parts[i] = fut.result()
                job.left -= 1
                if job.left == 0:
                    job.result.set_result([c for k in range(len(job.chunks)) for c in job.parts[k]])
        self._pump()

    def _drop(self, job: _Job) -> None:
        """A failed job's remaining chunks leave the queue."""
        with self._lock:
            for account, q in list(self._queues.items()):
                keep = deque(x for x in q if x[0] is not job)
                self.queued -= sum(len(job.chunks[i]) for j, i in q if j is job)
                if keep:
                    self._queues[account] = keep
                else:
                    del self._queues[account]
