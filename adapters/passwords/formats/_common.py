"""Small pieces every format shares: ids, strict timestamps, extras."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from urllib.parse import urlsplit

__all__ = [
    "NewId",
    "as_uuid",
    "extras",
    "iso_to_ms",
    "ms_to_iso",
    "new_uuid",
    "site_name",
]

NewId = Callable[[], str]

_EPOCH_DAY = date(1970, 1, 1).toordinal()
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z", re.ASCII)


def new_uuid() -> str:
    """A fresh entry id (the default ``new_id``)."""
    return str(uuid.uuid4())


def as_uuid(entry_id: str) -> str:
    """The entry id if it is a UUID, else a stable UUID derived from it."""
    try:
        return str(uuid.UUID(entry_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "keystead:entry:" + entry_id))


@lru_cache(maxsize=4096)
def _days(year: int, month: int, day: int) -> int | None:
    try:
        return date(year, month, day).toordinal() - _EPOCH_DAY
    except ValueError:
        return None


def iso_to_ms(value: str) -> int | None:
    """Milliseconds from an ISO 8601 UTC time ending in Z; None if it is not one.

    Digits past the millisecond (some servers write microseconds) are dropped.
    """
    m = _ISO.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = map(int, m.groups()[:6])
    days = _days(year, month, day)
    if days is None or days < 0 or hour > 23 or minute > 59 or second > 59:
        return None
    ms = int((m.group(7) or "0").ljust(3, "0")[:3])
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms


def ms_to_iso(ms: int, *, millis: bool) -> str:
    """ISO 8601 UTC, with or without milliseconds, as the product writes it."""
    when = datetime.fromtimestamp(ms // 1000, tz=UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if millis else f"{text}Z"


def extras(**values: str) -> tuple[tuple[str, str], ...]:
    """An ``Entry.extra`` tuple (sorted keys); ``__`` in a name stands for ``.``."""
    return tuple(sorted((k.replace("__", "."), v) for k, v in values.items()))


def site_name(url: str) -> str:
    """A display name for formats that carry none: the URL's host, else the URL."""
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url
