"""A strict RFC 4180 reader and writer that keep every character of every value.

The standard ``csv`` module is lenient (a stray quote inside a field passes),
caps field size, and reports only where a record ended. This reader refuses
anything ambiguous, tells the line where the problem is, and hands back each
record with the line it starts on; values come back exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .._errors import MalformedFile
from ._loss import Skips

__all__ = ["Table", "decode", "drop_unknown_columns", "parse_csv", "write_csv"]

_QUOTED = re.compile(r'"((?:[^"]++|"")*+)"')  # possessive: no backtracking blow-up
_PLAIN = re.compile(r'[^,"\r\n]*')
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def decode(format_name: str, data: bytes) -> str:
    """UTF-8 text of a file (one leading BOM dropped); bad bytes name their line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise MalformedFile(format_name, line, "not valid UTF-8") from e


def parse_csv(format_name: str, text: str) -> list[tuple[int, list[str]]]:
    """Every record as (line it starts on, fields). Lines end in LF or CRLF.

    One final line break is allowed; an empty line, a quote inside an unquoted
    field, text after a closing quote or an unclosed quote is refused.
    """
    records: list[tuple[int, list[str]]] = []
    pos, line, end = 0, 1, len(text)
    if not text:
        return records
    while pos < end:
        start_line = line
        fields: list[str] = []
        while True:
            if text.startswith('"', pos):
                m = _QUOTED.match(text, pos)
                if m is None:
                    raise MalformedFile(format_name, line, "quoted field is never closed")
                value = m.group(1)
                line += value.count("\n")
                fields.append(value.replace('""', '"'))
            else:
                m = _PLAIN.match(text, pos)
                assert m is not None  # the pattern matches the empty string
                fields.append(m.group(0))
            pos = m.end()
            if pos == end:
                break
            ch = text[pos]
            if ch == ",":
                pos += 1
                continue
            if text.startswith("\r\n", pos):
                pos += 2
            elif ch == "\n":
                pos += 1
            elif ch == '"':
                raise MalformedFile(format_name, line, "quote inside an unquoted field")
            elif ch == "\r":
                raise MalformedFile(format_name, line, "carriage return outside quotes")
            else:
                raise MalformedFile(format_name, line, "text after a closing quote")
            line += 1
            break
        if fields == [""]:
            raise MalformedFile(format_name, start_line, "empty line")
        records.append((start_line, fields))
    return records


class Table:
    """A parsed CSV read by column name, as the products read theirs.

    The header must name every ``required`` column; columns may come in any
    order. A row shorter than the header has its missing trailing cells empty
    (what every manager does with hand-made files); a longer row is refused.
    ``unknown`` lists header columns outside ``required`` and ``optional``,
    for the caller to report (their values cannot be kept).
    """

    def __init__(
        self,
        format_name: str,
        text: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
    ) -> None:
        records = parse_csv(format_name, text)
        if not records:
            raise MalformedFile(format_name, 1, "file is empty (no header)")
        _, header = records[0]
        if len(set(header)) != len(header):
            raise MalformedFile(format_name, 1, "a column name appears twice in the header")
        missing = [c for c in required if c not in header]
        if missing:
            raise MalformedFile(
                format_name, 1, f"header has no {', '.join(repr(c) for c in missing)} column"
            )
        known = set(required) | set(optional)
        self.header = header
        self.unknown = [c for c in header if c not in known]
        self.rows: list[tuple[int, dict[str, str]]] = []
        width = len(header)
        for line, fields in records[1:]:
            if len(fields) > width:
                raise MalformedFile(
                    format_name, line, f"{len(fields)} fields where the header has {width}"
                )
            fields = fields + [""] * (width - len(fields))
            row = dict(zip(header, fields, strict=True))
            for c in optional:
                row.setdefault(c, "")
            self.rows.append((line, row))


def _quote(value: str, always: bool) -> str:
    if always or _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(
    rows: Iterable[Sequence[str]],
    *,
    quote_all: bool = False,
    newline: str = "\n",
    final_newline: bool = True,
) -> bytes:
    """CSV bytes as the products write them: minimal or full quoting, chosen line end."""
    lines = [",".join(_quote(v, quote_all) for v in row) for row in rows]
    text = newline.join(lines)
    if final_newline and lines:
        text += newline
    return text.encode("utf-8")


def drop_unknown_columns(format_name: str, table: Table, skips: Skips) -> None:
    """Report every non-empty value in a column the format does not define."""
    for column in table.unknown:
        for line, row in table.rows:
            if row[column]:
                skips.drop(format_name, f"on line {line}", f"column {column!r}", "unknown column")
