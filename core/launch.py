"""The ``keystead`` console entry point.

When this home's unlock agent runs, a quick command (``keystead passwords get
URL``...) is sent to it and its output printed: this module imports only the
standard library, so such a command costs an interpreter start and a round trip.
Everything else, and everything when no agent runs, goes to the Click CLI.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main() -> None:
    argv = sys.argv[1:]
    if argv and not argv[0].startswith("-"):
        from ._homedir import home_dir
        from .unlock import AgentLost, run_quick

        try:
            result = run_quick(home_dir(), argv)
        except AgentLost as e:
            _write(2, f"keystead: {e}\n".encode())
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            _write(2, b"keystead: interrupted\n")
            raise SystemExit(130) from None
        if result is not None:
            code, chunks = result
            try:
                for fd, data in chunks:
                    _write(fd, data)
            except BrokenPipeError:
                raise SystemExit(1) from None
            raise SystemExit(code)
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
