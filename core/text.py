"""Text from remote parties, made safe to print on a terminal.

Anything another party wrote (a message, a service's error text, a relying
party's name, a header field of a document) can carry ANSI escapes, carriage
returns, newlines or bidi overrides that fake a line such as ``(verified)``.
Every CLI prints such text through :func:`printable`.
"""

from __future__ import annotations

import unicodedata

__all__ = ["DEFAULT_LIMIT", "printable"]

DEFAULT_LIMIT = 500
_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
_BAD = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: object, limit: int = DEFAULT_LIMIT, *, newlines: bool = False) -> str:
    """``text`` with every control, format (bidi) and unassigned character replaced by U+FFFD,
    cut to ``limit`` characters (marked with an ellipsis). ``newlines`` keeps ``\\n``
    (for a message body shown on its own lines); a tab becomes a space."""
    if limit < 1:
        raise ValueError("limit must be positive")
    s = text if isinstance(text, str) else str(text)
    out = []
    for ch in s[: limit + 1]:
        if ch == "\n" and newlines:
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in _BAD:
            out.append(_REPLACEMENT)
        else:
            out.append(ch)
    if len(out) > limit:
        return "".join(out[: limit - 1]) + "\N{HORIZONTAL ELLIPSIS}"
    return "".join(out)
