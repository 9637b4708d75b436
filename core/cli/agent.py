"""The unlock agent process: ``python -m keystead.core.cli.agent HOME SECONDS``, key on stdin.

It serves the key (``keystead.core.unlock``) and runs the adapters' quick
commands in-process through the same Click CLI the shell would run, with the
same parsing, output and errors: only the process start and the imports are
saved.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapter import HasQuickCommands, discover, quick_commands
from ..unlock import QuickResult, serve

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["QuickRunner"]


class QuickRunner:
    """Runs ``keystead ARGV`` in this process when ARGV starts with a quick command."""

    def __init__(self, home: Path, quick: Iterable[Sequence[str]]) -> None:
        self.home = home
        self.quick = {tuple(q) for q in quick}

    @classmethod
    def for_installed_adapters(cls, home: Path) -> QuickRunner:
        adapters = discover()
        for a in adapters.values():  # import their command groups now, not on first lookup
            if isinstance(a, HasQuickCommands) and a.quick_commands:
                a.cli_groups()
        return cls(home, quick_commands(adapters))

    def is_quick(self, argv: Sequence[str]) -> bool:
        return any(tuple(argv[: len(q)]) == q for q in self.quick)

    def __call__(self, argv: list[str], env: dict[str, str]) -> QuickResult:
        from . import main

        chunks: list[tuple[int, bytes]] = []
        text_out = io.TextIOWrapper(_Capture(chunks, 1), encoding="utf-8", write_through=True)
        text_err = io.TextIOWrapper(_Capture(chunks, 2), encoding="utf-8", write_through=True)
        saved_env = {k: v for k, v in os.environ.items() if k.startswith("KEYSTEAD_")}
        saved_streams = sys.stdin, sys.stdout, sys.stderr
        for k in saved_env:
            del os.environ[k]
        os.environ.update(env)
        os.environ["KEYSTEAD_HOME"] = str(self.home)
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(), text_out, text_err
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                text_err.write(e.code + "\n")
        except Exception as e:  # a bug in one command must not take the agent down
            text_err.write(f"keystead: internal error: {type(e).__name__}: {e}\n")
            code = 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for k in [k for k in os.environ if k.startswith("KEYSTEAD_")]:
                del os.environ[k]
            os.environ.update(saved_env)
        return code, chunks


class _Capture(io.BufferedIOBase):
    """A write-only stream that appends what is written, tagged with its descriptor, to a
    list shared by stdout and stderr: the order between the two is kept."""

    def __init__(self, chunks: list[tuple[int, bytes]], fd: int) -> None:
        self.chunks, self.fd = chunks, fd

    @property
    def name(self) -> str:
        return "<stdout>" if self.fd == 1 else "<stderr>"

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer, /) -> int:
        data = bytes(b)
        if data:
            if self.chunks and self.chunks[-1][0] == self.fd:
                self.chunks[-1] = (self.fd, self.chunks[-1][1] + data)
            else:
                self.chunks.append((self.fd, data))
        return len(data)


def _main() -> None:
    home = Path(sys.argv[1])
    key = sys.stdin.buffer.read(32)
    serve(home, key, float(sys.argv[2]), QuickRunner.for_installed_adapters(home.resolve()))


if __name__ == "__main__":
    _main()
