"""Joining an account: a new device's pairing request, the admin's view of it, and the
wait for the approval. The approval itself (a chain entry and grants) is an account change:
:func:`keystead.core.account.approve_device`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import labels
from ._encoding import b64d, b64e, parse_json_object
from .chain import check_name, sign_device_statement, verify_pairing_request
from .client import ServiceClient, path
from .collections import Collection
from .crypto import VerifyKey
from .device import Device, fetch_chain
from .errors import DecryptionFailed, Forbidden, FormatError, StorageError, VerificationError
from .home import Home
from .keys import AccountSecrets, DeviceKeys
from .keystore import Keystore

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Invite",
    "JoinTicket",
    "PairingDetails",
    "pairing_details",
    "parse_invite",
    "short_authentication_string",
    "start_join",
    "wait_for_approval",
]

ADMIN_COLLECTION = "_admin"
Clock = Callable[[], float]


def new_home(
    home: Home,
    server: str,
    account: str,
    name: str,
    passphrase: str,
    keys: DeviceKeys,
    account_key: VerifyKey,
) -> Keystore:
    if home.exists:
        raise StorageError(f"{home.path} already holds a device; use another KEYSTEAD_HOME")
    store = Keystore.create(
        home.keystore, passphrase, {"device": keys.to_json(), "account_key": b64e(account_key.raw)}
    )
    home.write_device({"server": server.rstrip("/"), "account": account, "name": name})
    return store


def short_authentication_string(code: str, device_key: bytes, account_key: bytes) -> str:
    """Six digits both sides compute; equal only if neither key was swapped in transit."""
    d = hashlib.sha256(
        labels.SAS_LABEL
        + b"\x00"
        + code.strip().upper().encode()
        + b"\x00"
        + device_key
        + account_key
    ).digest()
    n = int.from_bytes(d[:8], "big") % 1_000_000
    return f"{n // 1000:03d} {n % 1000:03d}"


@dataclass(frozen=True)
class JoinTicket:
    code: str
    token: str
    sas: str
    account_fingerprint: str
    device_fingerprint: str


@dataclass(frozen=True)
class Invite:
    """What ``keystead device invite`` hands a new device (a phone scans it): the service,
    the account, and the fingerprint of the account key the device must find there
    (docs/PHONE.md §4). It carries nothing secret: the admin's approval, after comparing
    the verification numbers, is what lets the device in."""

    server: str
    account: str
    fingerprint: str

    @property
    def url(self) -> str:
        """``SERVER/app/#join=ACCOUNT&fp=FINGERPRINT`` (a fragment never reaches a server)."""
        from urllib.parse import quote, urlencode

        fragment = urlencode({"join": self.account, "fp": self.fingerprint}, quote_via=quote)
        return f"{self.server.rstrip('/')}/app/#{fragment}"


def parse_invite(url: str) -> Invite:
    """An invite URL back into its parts; anything else is a ``FormatError``."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FormatError("an invite is an http(s) address with #join=...&fp=...")
    if not parts.path.rstrip("/").endswith("/app"):
        raise FormatError("an invite is an address of the app (/app/#join=...&fp=...)")
    fields = parse_qs(parts.fragment, keep_blank_values=True, strict_parsing=False)
    account, fp = fields.get("join", []), fields.get("fp", [])
    if len(account) != 1 or len(fp) != 1 or not account[0] or not fp[0].startswith("SHA256:"):
        raise FormatError("the invite has no account (join=) or no fingerprint (fp=SHA256:...)")
    base = parts.path.rstrip("/")[: -len("/app")]
    return Invite(f"{parts.scheme}://{parts.netloc}{base}", account[0], fp[0])


def start_join(
    home: Home,
    server: str,
    account: str,
    device_name: str,
    passphrase: str,
    *,
    account_fingerprint: str | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
) -> JoinTicket:
    """Ask to join ``account``: creates this device's keys and a pairing code. With
    ``account_fingerprint`` (an invite's), nothing is created or sent unless the service's
    account key has that fingerprint."""
    check_name(device_name, "device name")
    anon = ServiceClient(server, transport=transport, clock=clock)
    state, _ = fetch_chain(anon, account)
    if account_fingerprint is not None and state.account_key.fingerprint != account_fingerprint:
        raise VerificationError(
            f"the account {account!r} at {server} has the key {state.account_key.fingerprint}, "
            f"not {account_fingerprint} as the invite says: not joining"
        )
    keys = DeviceKeys.generate()
    body = keys.public_body(device_name)
    resp = anon.post(
        path("accounts", account, "pairing"),
        {"device": body, "statement_sig": b64e(sign_device_statement(keys.signing, account, body))},
        signed=False,
    )
    store = new_home(home, server, account, device_name, passphrase, keys, state.account_key)
    store.data["pairing"] = {"code": resp["code"], "token": resp["token"]}
    store.save()
    return JoinTicket(
        resp["code"],
        resp["token"],
        short_authentication_string(
            resp["code"], keys.signing.verify_key.raw, state.account_key.raw
        ),
        state.account_key.fingerprint,
        keys.signing.verify_key.fingerprint,
    )


def wait_for_approval(
    home: Home,
    passphrase: str,
    wait: float,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Device | None:
    """Poll until an admin approves; returns the ready device, or None on timeout."""
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    ticket = device.keystore.data.get("pairing")
    if ticket is None:
        return device
    deadline = time.monotonic() + wait
    while True:
        status = device.client.get(
            path("pairing", ticket["code"], "status"),
            params={"token": ticket["token"]},
            signed=False,
        )["status"]
        if status == "approved":
            break
        if status == "expired":
            raise Forbidden("the pairing code expired before an admin approved it")
        if time.monotonic() >= deadline:
            return None
        sleep(0.2)
    state = device.chain()
    me = device.me(state)
    if me.signing_key != device.keys.signing.verify_key:
        raise VerificationError("the approved device entry does not carry this device's key")
    del device.keystore.data["pairing"]
    device.save()
    if me.role == "admin":
        coll = Collection(device, ADMIN_COLLECTION)
        coll.sync()
        rec = coll.get("secrets")
        if rec is None or not rec.by_admin:
            raise DecryptionFailed("the account secrets are not readable by this admin device")
        device.set_secrets(AccountSecrets.from_bytes(rec.plaintext))
    return device


@dataclass(frozen=True)
class PairingDetails:
    code: str
    device: dict[str, Any]
    statement_sig: bytes
    fingerprint: str
    sas: str


def pairing_details(device: Device, code: str) -> PairingDetails:
    """What an admin checks before approving: the joining device's keys, fingerprint and SAS."""
    raw = b64d(device.client.get(path("accounts", device.account, "pairing", code))["request"])
    body, sig, key = verify_pairing_request(
        device.account, parse_json_object(raw, what="pairing request")
    )
    account_key = device.chain().account_key.raw
    return PairingDetails(
        code, body, sig, key.fingerprint, short_authentication_string(code, key.raw, account_key)
    )
