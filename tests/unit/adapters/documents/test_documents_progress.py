"""The progress bar appears only for a person at a terminal, and only for large files."""

from __future__ import annotations

import io

from keystead.adapters.documents import terminal_progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_not_a_terminal() -> None:
    with terminal_progress(10**9, "Protecting", stream=io.StringIO()) as progress:
        assert progress is None


def test_no_bar_for_small_files() -> None:
    with terminal_progress(1000, "Protecting", stream=FakeTTY()) as progress:
        assert progress is None


def test_bar_on_a_terminal() -> None:
    out = FakeTTY()
    with terminal_progress(64 * 1024 * 1024, "Opening", stream=out) as progress:
        assert progress is not None
        for _ in range(1024):
            progress(65536)
    assert "Opening" in out.getvalue()


def test_bar_with_unknown_total() -> None:
    with terminal_progress(None, "Opening", stream=FakeTTY()) as progress:
        assert progress is not None
        progress(5)
