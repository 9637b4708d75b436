"""Protect and open whole documents: header + chunk stream, on streams or on paths.

Getting the data key (label keys, grants, re-encryption at the owner's service)
is the caller's business: ``open_stream`` hands the parsed header to a
``data_key_provider`` and uses what comes back. The path functions never leave
a partial or unauthenticated file at the target: they write a 0600 temporary
file beside it and rename it into place only after the last chunk verifies.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from keystead.core.errors import DecryptionFailed

from ._header import Header, read_header
from ._leftovers import Journal
from ._stream import DATA_KEY_SIZE, Progress, open_chunks, payload_key, seal_chunks

__all__ = [
    "DataKeyProvider",
    "open_stream",
    "open_to_path",
    "protect_stream",
    "protect_to_path",
]

#: Given the (not yet authenticated) header, return the 32-byte data key or raise.
DataKeyProvider = Callable[[Header], bytes]


def protect_stream(
    src: BinaryIO,
    dst: BinaryIO,
    header: Header,
    data_key: bytes,
    *,
    progress: Progress | None = None,
) -> int:
    """Write ``header`` then ``src`` encrypted under ``data_key``; return the plaintext size.

    ``data_key`` must be fresh for every document (the one in ``header``'s capsule).
    """
    if not isinstance(data_key, bytes) or len(data_key) != DATA_KEY_SIZE:
        raise ValueError("a document data key is 32 bytes")
    key = payload_key(data_key, header.digest)
    dst.write(header.to_bytes())
    return seal_chunks(src, dst, key, header.nonce_prefix, header.chunk_size, progress)


def open_stream(
    src: BinaryIO,
    dst: BinaryIO,
    data_key_provider: DataKeyProvider,
    *,
    progress: Progress | None = None,
) -> Header:
    """Decrypt a document from ``src`` into ``dst`` and return its (now authenticated) header.

    Raises ``FormatError`` for a bad header and ``DecryptionFailed`` for any
    failure of the body. On failure ``dst`` may already hold authenticated
    leading chunks: use ``open_to_path`` where that matters.
    """
    header = read_header(src)
    data_key = data_key_provider(header)
    if not isinstance(data_key, bytes) or len(data_key) != DATA_KEY_SIZE:
        raise DecryptionFailed()
    key = payload_key(data_key, header.digest)
    open_chunks(src, dst, key, header.nonce_prefix, header.chunk_size, progress)
    return header


@contextlib.contextmanager
def _atomic_output(
    out_path: Path, overwrite: bool, durable: bool, journal: Journal | None = None
) -> Iterator[BinaryIO]:
    """Yield a 0600 temporary file beside ``out_path``; put it in place only on success.
    With a ``journal``, the temporary file is entered there before it exists (so a later
    run removes it if this process is killed)."""
    if not overwrite and os.path.lexists(out_path):
        raise FileExistsError(f"{out_path} already exists")
    if journal is None:
        fd, tmp_name = tempfile.mkstemp(
            dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp"
        )
        with _placed(Path(tmp_name), fd, out_path, overwrite, durable) as f:
            yield f
        return
    tmp = journal.temp_path(out_path)
    with journal.entry(tmp):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with _placed(tmp, fd, out_path, overwrite, durable) as f:
            yield f


@contextlib.contextmanager
def _placed(
    tmp: Path, fd: int, out_path: Path, overwrite: bool, durable: bool
) -> Iterator[BinaryIO]:
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, out_path)
        else:
            _link_or_rename(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_or_rename(tmp: Path, out_path: Path) -> None:
    """Move ``tmp`` to ``out_path`` unless something is already there."""
    try:
        os.link(tmp, out_path)  # atomic "create if absent": never clobbers a file made meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT on a USB stick...): check, then rename
        if os.path.lexists(out_path):
            raise FileExistsError(f"{out_path} already exists") from None
        os.replace(tmp, out_path)
    else:
        tmp.unlink()


def protect_to_path(
    src_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    header: Header,
    data_key: bytes,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    durable: bool = False,
) -> int:
    """``protect_stream`` from one file to another, never leaving a partial ``out_path``.

    ``durable`` fsyncs before the rename, so that a power cut cannot leave an
    empty ``out_path``; it costs the disk's write speed (age and gpg do not).
    """
    with open(src_path, "rb") as src, _atomic_output(Path(out_path), overwrite, durable) as dst:
        return protect_stream(src, dst, header, data_key, progress=progress)


def open_to_path(
    src_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    data_key_provider: DataKeyProvider,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    durable: bool = False,
    journal: Journal | None = None,
) -> Header:
    """``open_stream`` into ``out_path``, which appears only once the whole document verified.

    On any failure no plaintext is left behind (the temporary file is removed; with a
    ``journal``, even after SIGKILL, by the next :meth:`Journal.sweep`).
    The opened file keeps mode 0600. ``durable`` as for ``protect_to_path``.
    """
    with (
        open(src_path, "rb") as src,
        _atomic_output(Path(out_path), overwrite, durable, journal) as dst,
    ):
        return open_stream(src, dst, data_key_provider, progress=progress)
