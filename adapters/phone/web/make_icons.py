"""Draw the app's PNG icons (a key on a blue field) with only the standard library.

Run: python3 adapters/phone/web/make_icons.py  (writes static/icons/*.png; the files are committed)
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

BG = (31, 78, 121)
FG = (255, 255, 255)
OUT = Path(__file__).resolve().parent / "static" / "icons"


def _png(width: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _ink(x: float, y: float) -> float:
    """Coverage of the key glyph at (x, y) in a unit square (0..1): a ring, a shaft, two teeth."""
    cx, cy = 0.34, 0.5
    r = math.hypot(x - cx, y - cy)
    if 0.08 <= r <= 0.17:
        return 1.0
    if 0.49 <= y <= 0.57 and 0.5 <= x <= 0.86:
        return 1.0
    if 0.57 <= y <= 0.69 and (0.72 <= x <= 0.77 or 0.8 <= x <= 0.86):
        return 1.0
    return 0.0


def icon(size: int, scale: float, rounded: bool) -> bytes:
    rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            acc = 0.0
            for sx, sy in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
                u = ((px + sx) / size - 0.5) / scale + 0.5
                v = ((py + sy) / size - 0.5) / scale + 0.5
                acc += _ink(u, v) / 4
            color = [round(b + (f - b) * acc) for b, f in zip(BG, FG, strict=True)]
            alpha = 255
            if rounded:  # a rounded square: the corners are transparent
                d = 0.18 * size
                qx = max(d - px, 0, px - (size - 1 - d))
                qy = max(d - py, 0, py - (size - 1 - d))
                alpha = 0 if math.hypot(qx, qy) > d else 255
            row.extend([*color, alpha])
        rows.append(bytes(row))
    return _png(size, rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon-192.png").write_bytes(icon(192, 1.0, rounded=True))
    (OUT / "icon-512.png").write_bytes(icon(512, 1.0, rounded=True))
    # maskable: full-bleed field, the key inside the central 80 % safe zone
    (OUT / "maskable-512.png").write_bytes(icon(512, 0.7, rounded=False))


if __name__ == "__main__":
    main()
