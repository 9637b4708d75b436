"""Terminal QR codes (Unicode half blocks), for addresses a phone should open: the app's
address printed by ``keystead serve --tls-self-signed`` and ``keystead device invite``."""

from __future__ import annotations

__all__ = ["render_qr"]

QUIET_ZONE = 4  # modules of light border the QR specification requires
_CELLS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def render_qr(text: str, *, dark_background: bool = True) -> str:
    """``text`` as a QR code, two modules per character cell, plain text (no colours).

    On a dark background the characters paint the light modules (as ``qrencode -t UTF8``
    does), on a light one the dark modules."""
    import segno

    code = segno.make(text, error="m", micro=False, boost_error=False)
    ink = [
        [bool(m) != dark_background for m in row]
        for row in code.matrix_iter(scale=1, border=QUIET_ZONE)
    ]
    if len(ink) % 2:
        ink.append([dark_background] * len(ink[0]))
    lines = [
        "".join(_CELLS[(a, b)] for a, b in zip(top, bottom, strict=True))
        for top, bottom in zip(ink[0::2], ink[1::2], strict=True)
    ]
    return "\n".join(lines) + "\n"
