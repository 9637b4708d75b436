"""``keystead ssh authorized-keys``: the account's SSH keys for sshd, verified, with no device.

Online: fetch the account chain (extending the cached one, so the cached entries are
the pin), fetch the signed list of imported keys, verify both, cache them with the
time of this verification, print. The newest verified chain is cached as soon as it
checks, before anything else is asked: a device it marks removed is never listed
again, whatever happens to the next request.

Offline (the service unreachable, slow, or answering 5xx): re-verify the cached
chain and list and print those, but only while the last online verification is
younger than ``max_stale`` seconds; past that, or with no cache, fail. Never an
empty or unverified list in place of a verified one, and never a stale one.

The cache holds only signed public data (chain entries and the signed list) and the
verification time, in ``$KEYSTEAD_SSH_CACHE`` or the per-user cache folder, one file
per server+account. Deleting it drops the pin (the next run trusts on first use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keystead.core import (
    ChainState,
    FormatError,
    InvalidSignature,
    KeysteadError,
    NetworkError,
    NotFound,
    RateLimited,
    RollbackDetected,
    ServiceError,
    UnsupportedVersion,
    VerificationError,
    atomic_write,
)
from keystead.core.chain import SignedEntry, check_head, verify_chain

from ._keys import PublicKey, authorized_keys_line
from ._published import OlderAccountKey, PublishedKeys, verify_published

log = logging.getLogger("keystead.ssh")

__all__ = [
    "DEFAULT_MAX_STALE",
    "DEFAULT_TIMEOUT",
    "AuthorizedKeys",
    "NoFreshList",
    "PinRefused",
    "authorized_keys",
    "cache_dir",
    "device_key_line",
]

CACHE_VERSION = 2  # 2 adds "verified_at"; a version 1 cache still pins, but is never fresh
DEFAULT_MAX_STALE = 300
DEFAULT_TIMEOUT = 10.0
CLOCK_SKEW = 60  # a verification time further in the future than this is not believed


class PinRefused(VerificationError):
    """The service served a chain that is not the pinned account's (another account key, a
    fork, a rollback) or whose key is not the ``--fingerprint`` given."""


class NoFreshList(NetworkError):
    """The service could not be asked, and no list verified recently enough is cached."""


def cache_dir() -> Path:
    env = os.environ.get("KEYSTEAD_SSH_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("keystead")) / "ssh"


def _cache_file(folder: Path, server: str, account: str) -> Path:
    tag = hashlib.sha256(f"{server.rstrip('/')}\n{account}".encode()).hexdigest()[:24]
    return folder / f"authorized-{account}-{tag}.json"


def device_key_line(account: str, device_name: str, ssh_key: bytes) -> str:
    """The OpenSSH line of a device's key, commented ``keystead:ACCOUNT:DEVICE``."""
    from . import _wire

    blob = _wire.string("ssh-ed25519") + _wire.string(ssh_key)
    return PublicKey(blob, f"keystead:{account}:{device_name}").line()


@dataclass(frozen=True)
class AuthorizedKeys:
    """What to print. ``offline`` names why the service was not asked (``problem``) and the
    list is the cached one, verified ``age`` seconds ago."""

    lines: list[str]
    offline: bool
    chain_seq: int
    published_seq: int
    age: float = 0.0
    problem: str = ""


@dataclass(frozen=True)
class _Cached:
    state: ChainState
    entries: list[SignedEntry]
    published: PublishedKeys | None
    verified_at: float | None  # None: a version 1 cache, never fresh


def _lines(state: ChainState, published: PublishedKeys | None) -> list[str]:
    out = [
        device_key_line(state.account, d.name, d.ssh_key)
        for d in sorted(state.live_devices, key=lambda d: d.added_seq)
    ]
    if published is not None:
        out += [
            authorized_keys_line(
                PublicKey(
                    k.blob,
                    f"keystead:{state.account}:imported" + (f":{k.comment}" if k.comment else ""),
                )
            )
            for k in published.keys
        ]
    return out


def _check_fingerprint(state: ChainState, fingerprint: str | None) -> None:
    if fingerprint is not None and state.account_key.fingerprint != fingerprint.strip():
        raise PinRefused(
            f"the account key of {state.account} is {state.account_key.fingerprint}, "
            f"not the --fingerprint given ({fingerprint.strip()})"
        )


def _read_cache(file: Path, account: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise FormatError(f"the ssh cache {file} is corrupt (delete it to pin afresh)") from e
    if (
        not isinstance(obj, dict)
        or obj.get("v") not in (1, CACHE_VERSION)
        or obj.get("account") != account
    ):
        raise FormatError(f"the ssh cache {file} is not a version {CACHE_VERSION} cache")
    return obj


def _current_list(
    state: ChainState, raw: object, account: str, *, cached: bool = False
) -> PublishedKeys | None:
    """The imported keys' list if the current account key signed it. One signed by an older
    key (an admin removal rotated it; an admin publishes again) counts as no list: the
    removed admin still holds that key. So does one of format 1 (from before the signed
    envelope), with a line telling the admin to run ``keystead ssh publish``: it never lists
    a key, so dropping its ``seq`` lets no removed key back (every later list counts on from
    it)."""
    try:
        return verify_published(state.signing_key, state.key_generation, raw, account=account)
    except OlderAccountKey:
        log.warning(
            "the imported ssh keys' list is signed by an older account key: "
            "listing device keys only until an admin device publishes it again"
        )
    except InvalidSignature:
        log.warning(
            "the imported ssh keys' list does not verify against the account key: "
            "listing device keys only"
        )
    except UnsupportedVersion as e:
        if not cached:  # a cached one is dropped quietly: the service is asked next
            log.warning("%s; listing device keys only until then", e)
    return None


def _verify_cached(obj: dict[str, Any], account: str) -> _Cached:
    entries = [SignedEntry.from_json(e) for e in obj.get("chain", [])]
    state = verify_chain(entries, account=account)
    pub = obj.get("published")
    published = None if pub is None else _current_list(state, pub, account, cached=True)
    at = obj.get("verified_at") if obj.get("v") == CACHE_VERSION else None
    if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
        raise FormatError("the ssh cache has a bad verification time")
    return _Cached(state, entries, published, None if at is None else float(at))


def _write_cache(file: Path, server: str, cached: _Cached) -> None:
    data = {
        "v": CACHE_VERSION,
        "server": server.rstrip("/"),
        "account": cached.state.account,
        "chain": [e.to_json() for e in cached.entries],
        "published": None if cached.published is None else cached.published.to_json(),
        "verified_at": cached.verified_at,
    }
    try:
        atomic_write(file, json.dumps(data).encode(), durable=False)
    except OSError:
        pass  # a read-only cache folder must not stop logins; next run fetches again


def _outage(server: str, error: KeysteadError, timeout: float) -> str:
    """Why the service was not asked, in a few words: slow (a timeout) or unreachable."""
    import httpx

    cause = error.__cause__
    if isinstance(cause, httpx.TimeoutException):
        return f"{server} is slow (no answer within {timeout:g} s)"
    if isinstance(error, (ServiceError, RateLimited)):
        return f"{server} is unavailable ({error})"
    reason = str(cause or error) or type(cause or error).__name__
    if reason.startswith("[Errno"):  # "[Errno 111] Connection refused" -> "connection refused"
        reason = reason.split("] ", 1)[-1]
    return f"{server} is unreachable ({reason[:1].lower() + reason[1:]})"


def _offline(known: _Cached | None, problem: str, now: float, max_stale: float) -> AuthorizedKeys:
    if known is None:
        raise NoFreshList(f"{problem}; no list verified before, so no keys are allowed")
    if known.verified_at is None:
        raise NoFreshList(
            f"{problem}; no complete list was verified before, so no keys are allowed"
        )
    age = now - known.verified_at
    if age > max_stale or age < -CLOCK_SKEW:
        raise NoFreshList(
            f"{problem}; the list verified {age:.0f} s ago is older than --max-stale "
            f"{max_stale:g} s, so no keys are allowed"
        )
    return AuthorizedKeys(
        _lines(known.state, known.published),
        True,
        known.state.seq,
        known.published.seq if known.published else 0,
        age=max(age, 0.0),
        problem=problem,
    )


_ASKED = (NetworkError, ServiceError, RateLimited)  # what may mean "the service is unavailable"


def _unavailable(e: KeysteadError) -> bool:
    """A network error, a 5xx or a rate limit: the cached list may stand in (within max_stale).
    Every other answer (a refusal, a 4xx) is an answer and fails the command."""
    return isinstance(e, (NetworkError, RateLimited)) or (
        isinstance(e, ServiceError) and e.status >= 500
    )


def authorized_keys(
    server: str,
    account: str,
    *,
    fingerprint: str | None = None,
    cache: Path | None = None,
    max_stale: float = DEFAULT_MAX_STALE,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.time,
    client_factory: Callable[[str], Any] | None = None,
) -> AuthorizedKeys:
    """The verified lines for ``account`` at ``server`` (see the module docstring).

    Raises :class:`PinRefused` when the service serves another account's chain (or a
    rollback), :class:`NoFreshList` when it cannot be asked and the cache is missing or
    older than ``max_stale`` seconds; both mean: allow no key."""
    from keystead.core.device import fetch_chain

    if max_stale < 0 or timeout <= 0:
        raise ValueError("max_stale must be >= 0 and timeout > 0")
    file = _cache_file(cache or cache_dir(), server, account)
    raw_cache = _read_cache(file, account)
    known = None if raw_cache is None else _verify_cached(raw_cache, account)
    if known is not None:
        _check_fingerprint(known.state, fingerprint)
    if client_factory is None:
        from keystead.core.client import ServiceClient

        client_factory = lambda url: ServiceClient(url, timeout=timeout)  # noqa: E731
    client = client_factory(server)
    try:
        try:
            # The cached entries are the pin: what the service adds must continue them.
            state, entries = fetch_chain(
                client,
                account,
                cached=known.entries if known else [],
                base=known.state if known else None,
            )
        except _ASKED as e:
            if not _unavailable(e):
                raise
            return _offline(known, _outage(server, e, timeout), clock(), max_stale)
        except VerificationError as e:
            if known is None:
                raise
            raise PinRefused(
                f"the chain {server} serves for {account} does not continue the one pinned in "
                f"{file} ({e}); delete that file only if the account was really recreated"
            ) from e
        _check_fingerprint(state, fingerprint)
        if known is not None:
            try:
                check_head(state, known.state.seq, known.state.head)
            except RollbackDetected as e:
                raise PinRefused(f"{e} (pinned in {file})") from e
            if state.seq != known.state.seq:
                # Remember the newest chain now: a device it removes stays unlisted even if
                # the next request fails and the cached list is served.
                known = _Cached(state, entries, known.published, known.verified_at)
                _write_cache(file, server, known)
        from keystead.core.client import path

        try:
            raw = client.get(path("ssh", account, "published-keys"), signed=False)
            published: PublishedKeys | None = _current_list(state, raw, account)
        except NotFound:
            published = None
        except _ASKED as e:
            if not _unavailable(e):
                raise
            known = _Cached(
                state,
                entries,
                known.published if known else None,
                known.verified_at if known else None,
            )
            return _offline(known, _outage(server, e, timeout), clock(), max_stale)
        old_seq = known.published.seq if known is not None and known.published else 0
        if (published.seq if published is not None else 0) < old_seq:
            raise PinRefused(
                "the service served an older list of imported ssh keys than one verified before"
            )
    finally:
        client.close()
    _write_cache(file, server, _Cached(state, entries, published, clock()))
    return AuthorizedKeys(
        _lines(state, published), False, state.seq, published.seq if published else 0
    )
