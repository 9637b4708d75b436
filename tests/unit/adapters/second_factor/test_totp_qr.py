"""The terminal QR rendering draws exactly segno's modules, two rows per line."""

import segno
from keystead.adapters.second_factor import qr_matrix, render_qr

URI = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
TOP = {" ": False, "▀": True, "▄": False, "█": True}
BOTTOM = {" ": False, "▀": False, "▄": True, "█": True}


def decode(text):
    rows = []
    for line in text.splitlines():
        rows.append([TOP[c] for c in line])
        rows.append([BOTTOM[c] for c in line])
    return rows


def test_matrix_is_segnos_with_quiet_zone():
    expected = [[bool(m) for m in row] for row in segno.make(URI, error="m").matrix_iter(border=4)]
    matrix = qr_matrix(URI)
    assert matrix == expected
    assert not any(matrix[0]) and not any(row[0] for row in matrix)


def test_dark_background_inks_the_light_modules():
    matrix = qr_matrix(URI)
    drawn = decode(render_qr(URI))
    assert len(drawn) == len(matrix) + len(matrix) % 2
    for y, row in enumerate(matrix):
        assert drawn[y] == [not m for m in row]
    if len(matrix) % 2:  # the padding row is quiet zone too: light, so inked
        assert all(drawn[-1])


def test_light_background_inks_the_dark_modules():
    matrix = qr_matrix(URI)
    drawn = decode(render_qr(URI, dark_background=False))
    assert drawn[: len(matrix)] == matrix


def test_fits_an_80_column_terminal():
    lines = render_qr(URI).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 40
