"""Small pieces every format shares: ids, strict timestamps, extras."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
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


def iso_to_ms(value: str) -> int | None:
    """Milliseconds from an ISO 8601 UTC time ending in Z; None if it is not one.

    Digits past the millisecond (some servers write microseconds) are dropped.
    """
    m = _ISO.match(value)
    if m is None:
        return None
    try:
        when = datetime(*(int(g) for g in m.groups()[:6]), tzinfo=UTC)
    except ValueError:
        return None
    ms = int((m.group(7) or "0").ljust(3, "0")[:3])
    whole = int(when.timestamp()) * 1000 + ms
    return whole if whole >= 0 else None


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
