"""A relying party's pins: which account key (and how much of its chain) it has seen.

A relying party that trusted whatever chain a service serves would accept approvals a
fake service made up for a made-up account. So on first use it pins, per (service,
account): the account key's fingerprint and the newest ``(seq, head)`` it verified.
Later, the chain served must continue the pinned one (``check_head``: same entry at
the pinned sequence, hash-linked from there, so any change of account key came
through the chain itself); else :class:`PinMismatch`. The pin then moves forward.

One small JSON file per pin in a folder (the CLI's: ``$KEYSTEAD_HOME/rp-pins``, else
the platform data folder's), written atomically::

    {"v": 1, "service": ORIGIN, "account": NAME, "account_key": FINGERPRINT,
     "seq": N, "head": HEX, "pinned": UNIX_TIME, "updated": UNIX_TIME}

Plain ``http://`` is refused except to a loopback address (:func:`check_service_url`):
the RP token travels in the request, and a first use over a network path anyone can
answer would pin the wrong key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keystead.core import (
    ChainState,
    FormatError,
    RollbackDetected,
    VerificationError,
    atomic_write,
)
from keystead.core.address import is_loopback_host
from keystead.core.chain import check_head

__all__ = [
    "AccountPin",
    "PinMismatch",
    "PinStore",
    "check_pin",
    "check_service_url",
    "default_pin_folder",
    "service_origin",
]

VERSION = 1
_FIELDS = {"v", "service", "account", "account_key", "seq", "head", "pinned", "updated"}


class PinMismatch(VerificationError):
    """The service served a chain that is not the pinned account's: another account key, a
    fork or a rollback; or a key that is not the fingerprint given. Nothing it says is used."""


@dataclass(frozen=True)
class AccountPin:
    """What a relying party pinned for one account at one service."""

    service: str
    account: str
    account_key: str  # fingerprint, as ``keystead account show`` prints it
    seq: int
    head: str
    pinned: int
    updated: int

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "service": self.service,
            "account": self.account,
            "account_key": self.account_key,
            "seq": self.seq,
            "head": self.head,
            "pinned": self.pinned,
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, obj: object) -> AccountPin:
        if not isinstance(obj, dict) or obj.get("v") != VERSION or set(obj) != _FIELDS:
            raise FormatError(f"not a version {VERSION} relying-party pin")
        strs = [obj[k] for k in ("service", "account", "account_key", "head")]
        ints = [obj[k] for k in ("seq", "pinned", "updated")]
        if not all(isinstance(x, str) and x for x in strs) or not all(
            type(x) is int and x >= 0 for x in ints
        ):
            raise FormatError("a relying-party pin has a bad field")
        return cls(
            obj["service"],
            obj["account"],
            obj["account_key"],
            obj["seq"],
            obj["head"],
            obj["pinned"],
            obj["updated"],
        )


def service_origin(url: str) -> str:
    """``scheme://host:port/path`` with the default port spelled out: one pin per service
    however its URL is written (a trailing slash, an upper-case host)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) service URL: {url!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as e:
        raise ValueError(f"bad port in the service URL {url!r}") from e
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def _loopback(host: str) -> bool:
    return is_loopback_host(host)


def check_service_url(url: str, *, insecure_http: bool = False) -> str:
    """The URL, if it is ``https://``, or ``http://`` to a loopback address (127.0.0.0/8,
    ::1, localhost), or ``insecure_http`` allows plain http anywhere; else ValueError."""
    parts = urlsplit(url.strip())
    service_origin(url)  # an http(s) URL with a host
    if (
        parts.scheme.lower() == "http"
        and not insecure_http
        and not _loopback((parts.hostname or "").lower())
    ):
        raise ValueError(
            f"refusing plain http to {parts.hostname}: anyone on the path could read the RP "
            "token and answer for the service; use https:// (or --insecure-http)"
        )
    return url


def default_pin_folder() -> Path:
    """``$KEYSTEAD_HOME/rp-pins``, else ``rp-pins`` in the platform's data folder."""
    home = os.environ.get("KEYSTEAD_HOME")
    if not home:
        from platformdirs import user_data_dir

        home = user_data_dir("keystead")
    return Path(home) / "rp-pins"


def check_pin(
    pin: AccountPin | None, state: ChainState, service: str, now: int, *, where: str = ""
) -> AccountPin:
    """The pin after seeing ``state``: a new one on first use, the old one moved forward when
    the chain continues it; :class:`PinMismatch` when it does not. Pure."""
    key = state.account_key.fingerprint
    if pin is None:
        return AccountPin(service, state.account, key, state.seq, state.head, now, now)
    if (pin.service, pin.account) != (service, state.account):
        raise ValueError("this pin is for another service or account")
    note = f" (pin: {where})" if where else ""
    try:
        check_head(state, pin.seq, pin.head)
    except RollbackDetected as e:
        if key != pin.account_key:
            raise PinMismatch(
                f"the account key of {state.account} at {service} is {key}, not the one pinned "
                f"on first use ({pin.account_key}): refusing{note}"
            ) from e
        raise PinMismatch(
            f"the chain of {state.account} at {service} is rolled back or forked: it does not "
            f"continue entry {pin.seq} seen before{note}"
        ) from e
    if (state.seq, state.head, key) == (pin.seq, pin.head, pin.account_key):
        return pin
    # It continues the pinned chain; a new account key came through a chain entry.
    return AccountPin(service, state.account, key, state.seq, state.head, pin.pinned, now)


class PinStore:
    """Pins in a folder, one file per (service, account)."""

    def __init__(
        self, folder: str | os.PathLike[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.folder = Path(folder)
        self.clock = clock

    def file(self, service: str, account: str) -> Path:
        origin = service_origin(service)
        tag = hashlib.sha256(f"{origin}\n{account}".encode()).hexdigest()[:32]
        return self.folder / f"pin-{tag}.json"

    def get(self, service: str, account: str) -> AccountPin | None:
        file = self.file(service, account)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise FormatError(f"cannot read the pin {file}: {e.strerror}") from e
        try:
            pin = AccountPin.from_json(json.loads(raw))
        except (ValueError, FormatError) as e:
            raise FormatError(
                f"the pin {file} is damaged; refusing (delete it only to pin afresh)"
            ) from e
        if (pin.service, pin.account) != (service_origin(service), account):
            raise FormatError(f"the pin {file} is for another service or account")
        return pin

    def check(self, service: str, state: ChainState) -> AccountPin:
        """Check ``state`` against the pin for (service, its account), creating it on first
        use and moving it forward otherwise."""
        origin, file = service_origin(service), self.file(service, state.account)
        old = self.get(service, state.account)
        new = check_pin(old, state, origin, int(self.clock()), where=str(file))
        if new != old:
            # Another run may have moved the pin meanwhile: never move it back.
            latest = self.get(service, state.account)
            if latest is not None and latest != old and latest.seq >= new.seq:
                return new
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(file, json.dumps(new.to_json()).encode())
        return new
