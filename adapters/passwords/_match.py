"""Which entries belong to a page: exact URL, then origin, then registrable domain.

The domain tier uses the Public Suffix List (shipped offline by the
``publicsuffixlist`` package), so ``alice.github.io`` never gets
``mallory.github.io``'s password, and it never downgrades https to http.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._entry import Entry

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["Match", "MatchKind", "Origin", "find_matches", "parse_origin", "registrable_domain"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class MatchKind(enum.IntEnum):
    """How an entry matched; lower is closer."""

    EXACT = 0
    ORIGIN = 1
    DOMAIN = 2


@dataclass(frozen=True)
class Origin:
    """A web origin (scheme, host, port) with the host in lowercase ASCII (punycode)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Match:
    """One entry for the page, which tier matched, and which of its URLs did."""

    entry: Entry
    kind: MatchKind
    url: str


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # Loading the list costs ~150 ms: only the domain tier pays for it, not exact/origin lookups.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _ascii_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _split(url: str) -> tuple[Origin, str] | None:
    """(origin, normalized URL) for an http(s) URL; None for anything else."""
    if "://" not in url and url and not url.startswith("/"):
        url = "https://" + url  # bare host, as some exports store it
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    origin = Origin(scheme, _ascii_host(parts.hostname), port or _DEFAULT_PORTS[scheme])
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return origin, f"{origin}{path}{query}"


def parse_origin(value: str) -> Origin:
    """Parse a serialized origin as browsers send it: ``https://host[:port]``, nothing more."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"not an http(s) origin: {value!r}") from e
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or value != value.strip()
        or "?" in value
        or "#" in value
    ):
        raise ValueError(f"not an http(s) origin: {value!r}")
    return Origin(parts.scheme, _ascii_host(parts.hostname), port or _DEFAULT_PORTS[parts.scheme])


@lru_cache(maxsize=1024)
def registrable_domain(host: str) -> str | None:
    """The public suffix plus one label (``example.co.uk``); None for IPs and bare suffixes."""
    if not host or ":" in host or host.replace(".", "").isdigit():
        return None
    domain: str | None = _psl().privatesuffix(host)
    return domain


def _tier(page: Origin, page_url: str, url: str, by_domain: bool) -> MatchKind | None:
    split = _split(url)
    if split is None:
        return None
    origin, normalized = split
    if normalized == page_url:
        return MatchKind.EXACT
    if origin == page:
        return MatchKind.ORIGIN
    if page.scheme == "http" and origin.scheme == "https":
        return None  # never hand an https password to a plain-http page
    if not by_domain:
        return None  # autofill: no need to load the Public Suffix List
    domain = registrable_domain(page.host)
    if domain is not None and registrable_domain(origin.host) == domain:
        return MatchKind.DOMAIN
    return None


def find_matches(
    entries: Iterable[Entry], page_url: str, *, tiers: Iterable[MatchKind] = tuple(MatchKind)
) -> list[Match]:
    """Entries for ``page_url``, closest tier first, each saying how it matched.

    An entry appears once, at its best tier over its ``url`` and ``other_urls``.
    Pass ``tiers`` to leave out the domain tier (autofill does).
    """
    page = _split(page_url)
    if page is None:
        return []
    allowed = set(tiers)
    found: list[Match] = []
    for entry in entries:
        best: Match | None = None
        for url in (entry.url, *entry.other_urls):
            kind = _tier(page[0], page[1], url, MatchKind.DOMAIN in allowed)
            if kind is not None and kind in allowed and (best is None or kind < best.kind):
                best = Match(entry, kind, url)
        if best is not None:
            found.append(best)
    found.sort(key=lambda m: m.kind)
    return found
