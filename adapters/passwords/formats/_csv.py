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

__all__ = ["Table", "decode", "parse_csv", "write_csv"]

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
    """A parsed CSV with a known header: rows as dicts, each with its line number."""

    def __init__(
        self,
        format_name: str,
        text: str,
        headers: Sequence[Sequence[str]],
    ) -> None:
        records = parse_csv(format_name, text)
        if not records:
            raise MalformedFile(format_name, 1, "file is empty (no header)")
        _, header = records[0]
        if not any(list(h) == header for h in headers):
            expected = ",".join(headers[0])
            raise MalformedFile(format_name, 1, f"header is not {expected!r}")
        self.header = header
        self.rows: list[tuple[int, dict[str, str]]] = []
        for line, fields in records[1:]:
            if len(fields) != len(header):
                raise MalformedFile(
                    format_name, line, f"{len(fields)} fields where the header has {len(header)}"
                )
            self.rows.append((line, dict(zip(header, fields, strict=True))))


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
