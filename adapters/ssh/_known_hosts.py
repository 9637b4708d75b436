"""OpenSSH known_hosts: parse, match a host and key, and answer ``KnownHostsCommand``.

Matching follows OpenSSH (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): names are
compared case-insensitively with ``*``/``?`` wildcards, ``!`` negates, a port
other than 22 is written ``[host]:port``, and a hashed host is
``|1|base64(salt)|base64(HMAC-SHA1(salt, name))``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import fnmatch
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keystead.core.errors import FormatError

from ._keys import PublicKey

__all__ = [
    "HostKeyStatus",
    "KnownHost",
    "check_host_key",
    "hash_host",
    "host_lookup_name",
    "known_hosts_command_output",
    "known_hosts_line",
    "parse_known_hosts",
    "split_lookup_name",
]

_MARKERS = ("@cert-authority", "@revoked")
_HASH_MAGIC = "|1|"
_SHA1 = 20
_PORT_NAME = re.compile(r"\[([^\[\]]+)\]:(\d{1,5})")


class HostKeyStatus(enum.Enum):
    """How a host key compares with known_hosts, as ssh would judge it."""

    MATCH = "match"
    REVOKED = "revoked"
    CHANGED = "changed"  # the host is known with another key of this type
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class KnownHost:
    """One known_hosts line; ``line`` keeps the exact text it came from."""

    marker: str | None  # "@cert-authority", "@revoked" or None
    patterns: tuple[str, ...]  # plain patterns, lower-cased; empty when hashed
    hashed: tuple[bytes, bytes] | None  # (salt, digest)
    key: PublicKey
    line: str
    line_number: int

    def matches(self, lookup_name: str) -> bool:
        """Does this entry apply to ``lookup_name`` (``host`` or ``[host]:port``)?"""
        name = lookup_name.lower()
        if self.hashed is not None:
            salt, digest = self.hashed
            return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatchcase(name, _glob(pattern[1:] if negated else pattern)):
                if negated:
                    return False
                matched = True
        return matched


def _glob(pattern: str) -> str:
    """OpenSSH patterns know only ``*`` and ``?``: escape fnmatch's ``[``."""
    return pattern.replace("[", "[[]")


def host_lookup_name(host: str, port: int = 22) -> str:
    """The name ssh looks up: ``host``, or ``[host]:port`` for other ports."""
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    return host.lower() if port == 22 else f"[{host.lower()}]:{port}"


def split_lookup_name(name: str) -> tuple[str, int]:
    """Inverse of ``host_lookup_name`` (for ``%H`` in ``KnownHostsCommand``)."""
    m = _PORT_NAME.fullmatch(name)
    if m is None:
        if not name or any(c in name for c in "[] ,\t\n"):
            raise FormatError("not a host name")
        return name.lower(), 22
    port = int(m.group(2))
    if not 0 < port < 65536:
        raise FormatError("port out of range")
    return m.group(1).lower(), port


def hash_host(lookup_name: str, salt: bytes | None = None) -> str:
    """A hashed host field as ``ssh-keygen -H`` writes it."""
    salt = os.urandom(_SHA1) if salt is None else salt
    if len(salt) != _SHA1:
        raise ValueError("salt must be 20 bytes")
    digest = hmac.new(salt, lookup_name.lower().encode(), hashlib.sha1).digest()
    return f"{_HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise FormatError("bad base64 in known_hosts") from e


def _parse_line(line: str, number: int) -> KnownHost | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split(None, 1)
    marker = None
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS or len(fields) < 2:
            raise FormatError(f"known_hosts line {number}: unknown marker")
        marker, fields = fields[0], fields[1].split(None, 1)
    if len(fields) < 2:
        raise FormatError(f"known_hosts line {number}: no key")
    hosts, key_text = fields
    hashed = None
    patterns: tuple[str, ...] = ()
    if hosts.startswith(_HASH_MAGIC):
        parts = hosts[len(_HASH_MAGIC) :].split("|")
        if len(parts) != 2:
            raise FormatError(f"known_hosts line {number}: bad hashed host")
        salt, digest = _b64(parts[0]), _b64(parts[1])
        if len(salt) != _SHA1 or len(digest) != _SHA1:
            raise FormatError(f"known_hosts line {number}: bad hashed host")
        hashed = (salt, digest)
    else:
        patterns = tuple(p.lower() for p in hosts.split(","))
        if any(not p or p == "!" or "|" in p for p in patterns):
            raise FormatError(f"known_hosts line {number}: bad host pattern")
    try:
        key = PublicKey.from_line(key_text)
    except FormatError as e:
        raise FormatError(f"known_hosts line {number}: {e}") from e
    return KnownHost(marker, patterns, hashed, key, text, number)


def parse_known_hosts(text: str, *, skip_invalid: bool = False) -> list[KnownHost]:
    """Parse a known_hosts file; a bad line is a ``FormatError`` unless skipped.

    ``skip_invalid=True`` reads like ssh does, ignoring lines it cannot use
    (for a user's own file); strict parsing suits what Keystead stores.
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = _parse_line(line, number)
        except FormatError:
            if skip_invalid:
                continue
            raise
        if entry is not None:
            entries.append(entry)
    return entries


def check_host_key(
    entries: Iterable[KnownHost], host: str, port: int, key: PublicKey
) -> HostKeyStatus:
    """Judge a host's plain key (certificates are not handled here)."""
    name = host_lookup_name(host, port)
    status = HostKeyStatus.UNKNOWN
    for entry in entries:
        if entry.marker == "@cert-authority" or not entry.matches(name):
            continue
        same = entry.key.blob == key.blob
        if entry.marker == "@revoked":
            if same:
                return HostKeyStatus.REVOKED
        elif same:
            status = HostKeyStatus.MATCH
        elif entry.key.algorithm == key.algorithm and status is HostKeyStatus.UNKNOWN:
            status = HostKeyStatus.CHANGED
    return status


def known_hosts_line(
    hosts: Sequence[str], key: PublicKey, *, marker: str | None = None, hashed: bool = False
) -> str:
    """Format one known_hosts line; ``hosts`` are lookup names or patterns."""
    if not hosts or any(not h or any(c in h for c in " ,\t\r\n|") for h in hosts):
        raise ValueError("bad host names")
    if marker is not None and marker not in _MARKERS:
        raise ValueError(f"unknown marker {marker!r}")
    if hashed and len(hosts) != 1:
        raise ValueError("a hashed line names exactly one host")
    field = hash_host(hosts[0]) if hashed else ",".join(h.lower() for h in hosts)
    return " ".join(([marker] if marker else []) + [field, key.line()])


def known_hosts_command_output(entries: Iterable[KnownHost], lookup_name: str) -> str:
    """Text for ``KnownHostsCommand ... %H``: every line that applies to the host.

    Revocations and certificate authorities are included, so ssh applies
    them exactly as if they were in its own known_hosts file.
    """
    split_lookup_name(lookup_name)  # reject anything ssh would never pass
    lines = [e.line for e in entries if e.matches(lookup_name)]
    return "".join(line + "\n" for line in lines)
