"""Every limit of the service in one place, with documented defaults.

``keystead serve --config FILE`` reads a TOML file (top-level keys, or a ``[service]``
table); any field can also be set by an environment variable ``KEYSTEAD_<FIELD>``
(upper case), which wins over the file. An unknown key or a value of the wrong type
is an error, never ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import FormatError

__all__ = ["ServiceConfig"]

SQLITE_THREADS = 2
"""Database threads on SQLite when ``db_threads`` is 0 (auto)."""


def _cpu_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class ServiceConfig:
    """The service's limits and sizes. Every refusal names the field that caused it."""

    # requests
    max_body: int = 32 * 1024 * 1024
    """Largest request body in bytes (413 ``max_body``)."""
    max_batch: int = 20_000
    """Most items, capsules or grants in one request (413 ``max_batch``)."""
    max_wait: int = 60
    """Longest long poll in seconds."""
    max_recovery_blob: int = 64 * 1024
    """Largest recovery blob in bytes (it is stored before anyone is authenticated)."""
    max_skew: int = 300
    """Accepted clock difference of a signed request, seconds; nonces are kept twice this."""

    # per source address (unauthenticated routes), per hour
    accounts_per_source_hour: int = 20
    """Accounts one source address may create per hour (429 ``accounts_per_source_hour``)."""
    pairings_per_source_hour: int = 60
    """Pairing codes one source address may open per hour."""
    trust_forwarded_for: bool = False
    """Take the source from ``X-Forwarded-For`` when the peer is loopback (behind nginx)."""

    # per account
    reencrypt_per_minute: int = 200_000
    """Capsules one account may have re-encrypted per minute (429 with Retry-After)."""
    quota_items: int = 1_000_000
    """Items one account may store (413 ``quota_items``)."""
    quota_item_bytes: int = 2 * 1024 * 1024 * 1024
    """Bytes of item ciphertext one account may store."""
    quota_spool_messages: int = 10_000
    """Messages waiting in one account's spools."""
    quota_spool_bytes: int = 256 * 1024 * 1024
    """Bytes waiting in one account's spools."""

    # pools
    db_pool_size: int = 10
    """Database connections per process (plus ``db_pool_overflow`` in bursts)."""
    db_pool_overflow: int = 10
    db_threads: int = 0
    """Threads running database work per process. 0 (auto): 2 on SQLite, where one writer
    holds the lock at a time and more threads only take turns at the GIL (measured: 32
    threads served 0.64 of the signed reads 2 did, 4 threads 0.83); else ``db_pool_size +
    db_pool_overflow``, so no thread waits for a connection and none is opened per request."""
    cpu_workers: int = dataclasses.field(default_factory=_cpu_workers)
    """Processes doing CPU work (re-encryption); 0 runs it in the thread pool."""
    cpu_chunk: int = 1_000
    """Capsules per unit of CPU work: accounts take turns at this grain."""
    cpu_queue: int = 200_000
    """Capsules waiting for the CPU pool at most; more is 429 ``cpu_queue``."""
    access_log: bool = True
    """One JSON line per request on stderr (logger ``keystead.access``)."""
    shutdown_grace: float = 1.5
    """Seconds a stop waits for requests after waking every long poll."""
    reuse_port: bool = False
    """With ``--workers N`` on Linux: each worker listens on a socket of its own
    (``SO_REUSEPORT``) and the kernel spreads connections evenly, instead of one shared
    socket that whichever worker wakes first accepts from (measured: 32 keep-alive
    connections opened together all went to one worker of two). The price: a reload closes
    each old worker's socket, and connections waiting in its queue at that moment are reset
    (measured: 3 of 1,655 requests under load during a reload; none with the shared socket).
    Behind nginx, N processes on ports of their own are balanced either way (deploy/)."""

    # Web Push (docs/PHONE.md)
    push_allowed_hosts: tuple[str, ...] = (
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "*.push.apple.com",
        "*.notify.windows.com",
    )
    """Hosts a push subscription's endpoint may name (``*.`` matches any sub-domain): the
    service sends requests there, so any other host is refused (400) rather than reached."""
    push_allow_http_loopback: bool = False
    """Also accept ``http://`` endpoints on a loopback address (tests, a local push relay)."""
    push_subject: str = "mailto:admin@keystead.invalid"
    """The VAPID ``sub`` claim: how a push service reaches the operator (mailto: or https:)."""
    push_ttl: int = 60
    """Seconds a push service keeps an undelivered wake-up."""
    push_threads: int = 4
    """Threads sending pushes per process (off the request path)."""

    # the phone app
    app_dir: str = ""
    """The folder the phone app is served from at ``/app/`` (empty: the installed app)."""

    def threads_for(self, dialect: str) -> int:
        """``db_threads``, resolved for the database's dialect ("sqlite", "postgresql")."""
        if self.db_threads > 0:
            return self.db_threads
        if dialect == "sqlite":
            return SQLITE_THREADS
        return self.db_pool_size + self.db_pool_overflow

    @classmethod
    def load(
        cls, path: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> ServiceConfig:
        """Defaults, then the TOML file, then ``KEYSTEAD_*`` variables."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                raw = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise FormatError(f"cannot read the configuration {path}: {e}") from e
            values.update(raw.get("service", raw))
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        for f in known:
            text = env.get(f"KEYSTEAD_{f.upper()}")
            if text is not None:
                values[f] = text
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise FormatError(f"unknown configuration key {key!r}")
            out[key] = _coerce(key, value, type(getattr(_DEFAULTS, key)))
        return cls(**out)


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is tuple:  # a list of strings: a TOML array, or comma-separated in a variable
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise FormatError(f"configuration {key}: expected a list of strings")
        return tuple(value)
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text not in ("1", "0", "true", "false", "yes", "no"):
                raise FormatError(f"configuration {key}: expected true or false")
            return text in ("1", "true", "yes")
        try:
            value = kind(text)
        except ValueError:
            raise FormatError(f"configuration {key}: expected {kind.__name__}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"configuration {key}: expected {kind.__name__}")
    if isinstance(value, (int, float)) and value < 0:
        raise FormatError(f"configuration {key}: must not be negative")
    return value


_DEFAULTS = ServiceConfig()
