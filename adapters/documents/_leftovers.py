"""No decrypted plaintext left behind: a journal of the temporary outputs being written.

``doc open`` decrypts into a 0600 temporary file beside the output and renames
it into place only once every chunk authenticated. An exception or Ctrl-C
removes it; SIGTERM is turned into an exit that removes it too; SIGKILL (or a
power cut) cannot be caught, so each temporary output is first entered in a
journal in the device home (its path and the writing process), and the next
``doc`` command removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

__all__ = ["Journal", "exit_on_sigterm"]

_TMP_NAME = re.compile(r"\..+\.[0-9a-f]{16}\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Journal:
    """The temporary outputs this device home has in progress (one small file each)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def temp_path(self, out_path: Path) -> Path:
        """A fresh temporary name beside ``out_path`` (hidden, ``.tmp``)."""
        return out_path.parent / f".{out_path.name}.{secrets.token_hex(8)}.tmp"

    @contextlib.contextmanager
    def entry(self, tmp: Path) -> Iterator[None]:
        """Record ``tmp`` (before it is created) for as long as it may exist."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = self.folder / f"{secrets.token_hex(8)}.json"
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"path": str(tmp.absolute()), "pid": os.getpid()}, f)
        try:
            yield
        finally:
            record.unlink(missing_ok=True)

    def sweep(self) -> list[Path]:
        """Remove the temporary outputs of processes that are gone; returns them."""
        removed: list[Path] = []
        try:
            records = sorted(self.folder.glob("*.json"))
        except OSError:
            return removed
        for record in records:
            try:
                obj = json.loads(record.read_text())
                path, pid = Path(obj["path"]), obj["pid"]
                if not isinstance(pid, int) or isinstance(pid, bool):
                    raise ValueError("pid")
            except (OSError, ValueError, KeyError, TypeError):
                record.unlink(missing_ok=True)  # a half-written record: its file was not made
                continue
            if pid != os.getpid() and _alive(pid):
                continue
            if _TMP_NAME.fullmatch(path.name):  # only ever a temporary output of ours
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
            record.unlink(missing_ok=True)
        return removed


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM (and SIGHUP) raise ``SystemExit(128+n)`` in the main thread, so
    cleanup code (``finally``, ``except BaseException``) runs as it does for Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
