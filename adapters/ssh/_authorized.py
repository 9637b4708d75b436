"""``keystead ssh authorized-keys``: the account's SSH keys for sshd, verified, with no device.

Online: fetch the account chain (extending the cached one, pinned to the cached or
given account key), fetch the signed list of imported keys, verify both, cache
them, print. Offline: re-verify the cached chain and list and print those; with no
cache, fail. Never an empty or unverified list in place of a verified one.

The cache holds only signed public data (chain entries and the signed list), in
``$KEYSTEAD_SSH_CACHE`` or the per-user cache folder, one file per server+account.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keystead.core import (
    ChainState,
    FormatError,
    NetworkError,
    NotFound,
    RollbackDetected,
    VerificationError,
    atomic_write,
)
from keystead.core.chain import SignedEntry, check_head, verify_chain

from ._keys import PublicKey, authorized_keys_line
from ._published import PublishedKeys, verify_published

__all__ = ["AuthorizedKeys", "authorized_keys", "cache_dir", "device_key_line"]

CACHE_VERSION = 1


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
    lines: list[str]
    offline: bool
    chain_seq: int
    published_seq: int


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
        raise VerificationError("the account key does not match the pinned fingerprint")


def _read_cache(file: Path, account: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise FormatError(f"the ssh cache {file} is corrupt") from e
    if not isinstance(obj, dict) or obj.get("v") != CACHE_VERSION or obj.get("account") != account:
        raise FormatError(f"the ssh cache {file} is not a version {CACHE_VERSION} cache")
    return obj


def _verify_cached(
    obj: dict[str, Any], account: str
) -> tuple[ChainState, list[SignedEntry], PublishedKeys | None]:
    entries = [SignedEntry.from_json(e) for e in obj.get("chain", [])]
    state = verify_chain(entries, account=account)
    pub = obj.get("published")
    published = None if pub is None else verify_published(state.signing_key, pub,
                                                          account=account)
    return state, entries, published


def authorized_keys(
    server: str,
    account: str,
    *,
    fingerprint: str | None = None,
    cache: Path | None = None,
    client_factory: Callable[[str], Any] | None = None,
) -> AuthorizedKeys:
    """The verified lines for ``account`` at ``server`` (see the module docstring)."""
    from keystead.core.device import fetch_chain

    file = _cache_file(cache or cache_dir(), server, account)
    cached = _read_cache(file, account)
    old_state, old_entries, old_pub = (
        (None, [], None) if cached is None else _verify_cached(cached, account)
    )
    if old_state is not None:
        _check_fingerprint(old_state, fingerprint)
    if client_factory is None:
        from keystead.core.client import ServiceClient

        client_factory = lambda url: ServiceClient(url, timeout=10)  # noqa: E731
    client = client_factory(server)
    try:
        state, entries = fetch_chain(
            client,
            account,
            cached=old_entries,
            pinned_key=old_state.account_key if old_state else None,
        )
        _check_fingerprint(state, fingerprint)
        if old_state is not None:
            check_head(state, old_state.seq, old_state.head)
        from keystead.core.client import path

        try:
            raw = client.get(path("ssh", account, "published-keys"), signed=False)
            published: PublishedKeys | None = verify_published(
                state.signing_key, raw, account=account
            )
        except NotFound:
            published = None
        old_seq = old_pub.seq if old_pub is not None else 0
        if (published.seq if published is not None else 0) < old_seq:
            raise RollbackDetected(
                "the service served an older list of imported ssh keys than one verified before"
            )
    except NetworkError:
        if old_state is None:
            raise
        return AuthorizedKeys(
            _lines(old_state, old_pub), True, old_state.seq, old_pub.seq if old_pub else 0
        )
    finally:
        client.close()
    data = {
        "v": CACHE_VERSION,
        "server": server.rstrip("/"),
        "account": account,
        "chain": [e.to_json() for e in entries],
        "published": None if published is None else published.to_json(),
    }
    try:
        atomic_write(file, json.dumps(data).encode(), durable=False)
    except OSError:
        pass  # a read-only cache folder must not stop logins; next run fetches again
    return AuthorizedKeys(
        _lines(state, published), False, state.seq, published.seq if published else 0
    )
