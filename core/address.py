"""Account addresses: ``name@host[:port]``, one grammar for every adapter.

``name`` is an account name (``a-z 0-9 . _ -``, at most 63, starting with a letter
or digit); ``host`` a lower-case DNS name, an IPv4 address or a bracketed IPv6
address; ``port`` 1-65535 without leading zeros. One address has one spelling:
upper case, ``+``, a trailing dot or an empty port are refused, not normalised,
so two spellings can never name one account (or one account two ways).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import FormatError

__all__ = ["Address", "is_loopback_host"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
MAX_HOST = 253


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost`` or a loopback address (IPv4, IPv6, bracketed IPv6 or
    IPv4-mapped IPv6): a host that cannot leave this machine."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check_host(host: str) -> str:
    if host.startswith("["):
        if not host.endswith("]"):
            raise FormatError("an IPv6 host is written [address]")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise FormatError(f"invalid IPv6 address {host!r}") from None
        return host
    if not host or len(host) > MAX_HOST or not all(_LABEL.fullmatch(p) for p in host.split(".")):
        raise FormatError(f"invalid host {host!r}: lower-case letters, digits, '-' and '.'")
    return host


@dataclass(frozen=True)
class Address:
    """An account on a service, valid from birth."""

    name: str
    host: str
    port: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise FormatError(f"invalid account name {self.name!r}")
        if not isinstance(self.host, str):
            raise FormatError("the host is text")
        _check_host(self.host)
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise FormatError("a port is 1 to 65535")

    @classmethod
    def parse(cls, text: object, *, default: Address | str | None = None) -> Address:
        """``name@host[:port]``; with ``default`` (an address or a service URL), a bare
        ``name`` means that account name at the default's service."""
        if not isinstance(text, str):
            raise FormatError("an account address is text")
        name, at, netloc = text.partition("@")
        if not at:
            if default is None:
                raise FormatError(f"{text!r} is not an account address name@host[:port]")
            base = default if isinstance(default, Address) else cls.of_service("x", default)
            return cls(name, base.host, base.port)
        host, port = _split_netloc(netloc)
        return cls(name, host, port)

    @classmethod
    def of_service(cls, name: str, server_url: str) -> Address:
        """Account ``name`` at the service ``server_url`` (its host lower-cased)."""
        split = urlsplit(server_url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise FormatError(f"invalid service URL {server_url!r}")
        host, port = _split_netloc(split.netloc.lower())
        return cls(name, host, port)

    @property
    def netloc(self) -> str:
        """``host[:port]``, as it appears in a service URL."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def service_url(self, scheme: str = "https") -> str:
        if scheme not in ("http", "https"):
            raise ValueError("scheme is http or https")
        return f"{scheme}://{self.netloc}"

    def same_service(self, server_url: str) -> bool:
        """Whether this account lives at ``server_url``."""
        try:
            other = Address.of_service(self.name, server_url)
        except FormatError:
            return False
        return (other.host, other.port) == (self.host, self.port)

    def __str__(self) -> str:
        return f"{self.name}@{self.netloc}"


def _split_netloc(netloc: str) -> tuple[str, int | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
    else:
        host, colon, port_text = netloc.partition(":")
        rest = colon + port_text
    if not rest:
        return host, None
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]):
        raise FormatError(f"invalid port in {netloc!r}")
    return host, int(rest[1:])
