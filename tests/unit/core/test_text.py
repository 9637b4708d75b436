"""core.text.printable: remote text cannot paint the terminal or fake a line."""

from __future__ import annotations

import pytest
from keystead.core.text import printable


@pytest.mark.parametrize(
    "bad", ["\x1b[2K", "\r", "\n", "\x00", "\u202e", "\u2028", "\x7f", "\x9b31m", "\ufeff"]
)
def test_controls_and_format_characters_are_replaced(bad: str) -> None:
    out = printable(f"ok{bad}ok")
    assert bad not in out and out.startswith("ok") and out.endswith("ok")
    assert "\ufffd" in out


def test_text_is_kept_and_newlines_only_when_asked() -> None:
    assert printable("Zahlung über 10 € bestätigen? 日本") == "Zahlung über 10 € bestätigen? 日本"
    assert printable("a\nb", newlines=True) == "a\nb"
    assert printable("a\tb") == "a b"
    assert printable(ValueError("x\ny")) == "x\ufffdy"


def test_length_is_capped() -> None:
    assert printable("x" * 10, 10) == "x" * 10
    capped = printable("x" * 11, 10)
    assert len(capped) == 10 and capped.endswith("\u2026")
    with pytest.raises(ValueError):
        printable("x", 0)
