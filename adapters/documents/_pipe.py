"""Buffered I/O helpers for the chunk stream: full reads, and writes on a second thread.

Copying into the page cache costs about as much as AES-GCM itself. The
cipher holds the GIL but ``write`` releases it, so handing finished batches to
a writer thread lets the two overlap on a second core. Buffers circulate
through a fixed pool: memory stays constant and the writer never falls more
than the pool behind.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import BinaryIO

__all__ = ["BatchWriter", "fill"]


def fill(src: BinaryIO, view: memoryview) -> int:
    """Read until ``view`` is full or the source ends; short reads from pipes are normal."""
    got = 0
    while got < len(view):
        n = src.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def _write_all(dst: BinaryIO, view: memoryview) -> None:
    written = dst.write(view)
    while written is not None and written < len(view):  # raw files may write partially
        view = view[written:]
        written = dst.write(view)


class BatchWriter:
    """Writes buffers to ``dst`` in order, from a pool of ``depth``.

    The thread starts with the first batch that has a successor: a document
    that fits in one batch is written inline, without a thread.
    """

    def __init__(self, dst: BinaryIO, size: int, depth: int = 3) -> None:
        self._dst, self._size, self._unallocated = dst, size, depth
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="keystead-doc-writer", daemon=True)

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    _write_all(self._dst, buf[:n])
                except BaseException as e:  # handed to the caller's thread, re-raised there
                    self._error = e
            self._free.put(buf)

    def buffer(self) -> memoryview:
        """A free buffer to fill; raises the writer's error if a write failed."""
        if self._free.empty() and self._unallocated:
            self._unallocated -= 1
            return memoryview(bytearray(self._size))
        buf = self._free.get()
        if self._error is not None:
            raise self._error
        return buf

    def put(self, buf: memoryview, n: int, more: bool) -> None:
        """Queue the first ``n`` bytes of ``buf`` for writing; ``more``: other batches follow."""
        if not more and self._thread.ident is None:
            _write_all(self._dst, buf[:n])
            self._free.put(buf)
            return
        if self._thread.ident is None:
            self._thread.start()
        self._full.put((buf, n))

    def close(self) -> None:
        """Wait until everything queued is written; raise the writer's error if any."""
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._thread.is_alive():  # already failing: stop the thread, keep the first error
            self._full.put(None)
            self._thread.join()
