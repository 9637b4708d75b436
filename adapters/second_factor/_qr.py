"""QR codes drawn with Unicode half blocks, so ``keystead totp qr`` works in any terminal.

Two modules share one character cell (upper and lower half), which keeps the
code roughly square and small enough for an 80-column terminal. No ANSI
colours: output stays plain text that survives copying into a log or a file.
"""

from __future__ import annotations

import segno

__all__ = ["qr_matrix", "render_qr"]

QUIET_ZONE = 4  # modules of light border the QR specification requires around the code
# (upper dark, lower dark) -> character; "dark" here means "drawn with ink".
_CELLS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def qr_matrix(text: str) -> list[list[bool]]:
    """The code's modules, quiet zone included; True means a dark module."""
    code = segno.make(text, error="m", micro=False, boost_error=False)
    return [
        [bool(module) for module in row] for row in code.matrix_iter(scale=1, border=QUIET_ZONE)
    ]


def render_qr(text: str, *, dark_background: bool = True) -> str:
    """Render ``text`` as a QR code in half-block characters, one string with newlines.

    On a dark background the characters must paint the *light* modules (as
    ``qrencode -t UTF8`` does); on a light one they paint the dark modules.
    """
    matrix = qr_matrix(text)
    ink = [[module != dark_background for module in row] for row in matrix]
    if len(ink) % 2:  # pad with one more row of quiet zone (light modules)
        ink.append([dark_background] * len(ink[0]))
    lines = []
    for top, bottom in zip(ink[0::2], ink[1::2], strict=True):
        lines.append("".join(_CELLS[(a, b)] for a, b in zip(top, bottom, strict=True)))
    return "\n".join(lines) + "\n"
