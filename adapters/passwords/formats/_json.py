"""JSON read with bounds checked before conversion, and the line each array element starts on.

Python's ``json`` turns deep nesting into ``RecursionError`` and a number of
thousands of digits into a slow conversion or a ``ValueError``; both are
refused here as ``MalformedFile`` before they can happen.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._errors import MalformedFile

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "element_lines", "load_json"]

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 32
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_WS = re.compile(r"[ \t\n\r]*")


class _TooBig(ValueError):
    pass


def _check_depth(name: str, text: str) -> None:
    depth = 0
    bare = _STRINGS.sub("", text)
    for m in _BRACKETS.finditer(bare):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_DEPTH:
            line = text.count("\n", 0, _locate(text, bare, m.start())) + 1
            raise MalformedFile(name, line, f"nested deeper than {MAX_DEPTH} levels")


def _locate(text: str, bare: str, pos: int) -> int:
    """The position in ``text`` of ``bare[pos]`` (strings removed): approximate is enough."""
    return min(len(text), pos + (len(text) - len(bare)) * pos // max(1, len(bare)))


def _number(kind: type) -> Any:
    def parse(s: str) -> Any:
        if len(s) > MAX_NUMBER_CHARS:
            raise _TooBig(f"a number of {len(s)} characters (at most {MAX_NUMBER_CHARS})")
        return kind(s)

    return parse


def load_json(name: str, text: str) -> Any:
    """The document, or MalformedFile (with a line) for bad syntax, deep nesting, huge numbers."""
    _check_depth(name, text)
    try:
        return json.loads(
            text,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as e:
        raise MalformedFile(name, e.lineno, e.msg) from None
    except (_TooBig, RecursionError) as e:
        raise MalformedFile(name, 1, str(e) or "nested too deeply") from None


def _reject_constant(s: str) -> Any:
    raise _TooBig(f"{s} is not a JSON number")


def element_lines(text: str, key: str) -> list[int]:
    """Line where each element of the top-level array ``key`` starts (valid JSON only)."""
    dec, pos = json.JSONDecoder(), 0

    def skip(p: int) -> int:
        m = _WS.match(text, p)
        return m.end() if m else p

    pos = skip(pos) + 1
    while text[skip(pos)] != "}":
        name, pos = dec.raw_decode(text, skip(pos))
        pos = skip(skip(pos) + 1)
        if name == key and text[pos] == "[":
            lines, pos = [], pos + 1
            while text[skip(pos)] != "]":
                pos = skip(pos)
                lines.append(text.count("\n", 0, pos) + 1)
                _, pos = dec.raw_decode(text, pos)
                pos = skip(pos)
                pos += text[pos] == ","
            return lines
        _, pos = dec.raw_decode(text, pos)
        pos = skip(pos)
        pos += text[pos] == ","
    return []
