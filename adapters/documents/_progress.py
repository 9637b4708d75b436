"""A progress bar for long protects and opens, shown only to a person at a terminal.

Scripts and pipes get no bar (stderr is not a TTY), and neither do small files,
where a bar would only flicker. Updates are batched so that redrawing costs
nothing measurable next to the encryption.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from ._stream import Progress

__all__ = ["terminal_progress"]

_MIN_BYTES = 8 * 1024 * 1024
_BATCH = 1024 * 1024


@contextlib.contextmanager
def terminal_progress(
    total: int | None,
    description: str,
    *,
    stream: TextIO | None = None,
    min_bytes: int = _MIN_BYTES,
) -> Iterator[Progress | None]:
    """Yield a ``progress`` callback drawing a rich bar on ``stream``, or ``None`` if unwanted."""
    out = sys.stderr if stream is None else stream
    if not out.isatty() or (total is not None and total < min_bytes):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Bar(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(description, total=total)
        pending = 0

        def advance(n: int) -> None:
            nonlocal pending
            pending += n
            if pending >= _BATCH:
                bar.advance(task, pending)
                pending = 0

        yield advance
        bar.advance(task, pending)
