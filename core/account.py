"""Account lifecycle: create, join (pairing), approve, remove a device, recover.

These are the operations that write the account chain. Each builds entries
signed by the account key (held by admin devices and the recovery key) and
the kfrag grants that let devices read collections.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _umbral, labels
from ._encoding import b64d, b64e, parse_json_object
from ._umbral import PREPublicKey, PRESecretKey
from .chain import (
    DeviceInfo,
    SignedEntry,
    check_collection,
    check_name,
    make_entry,
    recovery_append_message,
    sign_device_statement,
    verify_pairing_request,
)
from .client import ServiceClient, path
from .collections import Collection
from .crypto import VerifyKey, random_bytes
from .device import Device, fetch_chain
from .errors import (
    DecryptionFailed,
    Forbidden,
    FormatError,
    NotFound,
    StorageError,
    VerificationError,
)
from .home import Home
from .keys import AccountSecrets, DeviceKeys, format_recovery_key, parse_recovery_key
from .keystore import Keystore

if TYPE_CHECKING:
    import httpx

__all__ = [
    "JoinTicket",
    "PairingDetails",
    "approve_device",
    "create_account",
    "ensure_collections",
    "pairing_details",
    "recover_account",
    "remove_device",
    "start_join",
    "wait_for_approval",
]

ACCOUNT_COLLECTION = "_account"
ADMIN_COLLECTION = "_admin"
Clock = Callable[[], float]


class _Chainer:
    """Builds consecutive entries on top of a chain head."""

    def __init__(self, secrets: AccountSecrets, account: str, seq: int, head: str,
                 clock: Clock) -> None:
        self.secrets, self.account, self.seq, self.head = secrets, account, seq, head
        self.clock = clock
        self.entries: list[SignedEntry] = []

    def add(self, kind: str, body: dict[str, Any], device_signature: bytes | None = None) -> None:
        e = make_entry(self.secrets.account_key, account=self.account, seq=self.seq + 1,
                       prev=self.head, time=int(self.clock()), type=kind, body=body,
                       device_signature=device_signature)
        self.entries.append(e)
        self.seq, self.head = self.seq + 1, e.digest

    def collection(self, name: str) -> bytes:
        """Create a collection with its first epoch; returns the epoch key."""
        sk = PRESecretKey.generate()
        self.secrets.collections[name] = sk
        self.add("collection-created", {"name": name, "public_key": b64e(sk.public_key.raw)})
        return self.epoch(name, sk.public_key, 1)

    def epoch(self, name: str, pk: PREPublicKey, epoch: int) -> bytes:
        key = random_bytes(32)
        capsule, ct = _umbral.encrypt(pk, key)
        self.add("epoch", {"collection": name, "epoch": epoch, "capsule": b64e(capsule),
                           "ciphertext": b64e(ct)})
        return key


def _grants(secrets: AccountSecrets, device_id: str, pre: PREPublicKey,
            scopes: Iterable[str]) -> list[dict[str, Any]]:
    return [{"key": s, "target_kind": "device", "target": device_id, "target_generation": 0,
             "kfrag": b64e(_umbral.make_kfrag(secrets.collections[s], pre, secrets.kfrag_signer)),
             "expires": None} for s in scopes]


def _recovery_blob(secrets: AccountSecrets) -> bytes:
    capsule, ct = _umbral.encrypt(secrets.recovery_key, secrets.to_bytes())
    return capsule + ct


def _device_scopes(role: str, scopes: Iterable[str]) -> list[str]:
    out = {ACCOUNT_COLLECTION, *scopes}
    if role == "admin":
        out.add(ADMIN_COLLECTION)
    return sorted(out)


def _new_home(home: Home, server: str, account: str, name: str, passphrase: str,
              keys: DeviceKeys, account_key: VerifyKey) -> Keystore:
    if home.exists:
        raise StorageError(f"{home.path} already holds a device; use another KEYSTEAD_HOME")
    store = Keystore.create(home.keystore, passphrase,
                            {"device": keys.to_json(), "account_key": b64e(account_key.raw)})
    home.write_device({"server": server.rstrip("/"), "account": account, "name": name})
    return store


def _publish_secrets(device: Device, secrets: AccountSecrets) -> None:
    """Keep the account secrets where other admins and the recovery key find them."""
    device.set_secrets(secrets)
    coll = Collection(device, ADMIN_COLLECTION)
    coll.sync()
    coll.put("secrets", secrets.to_bytes())
    device.client.put(path("accounts", device.account, "recovery"),
                      {"blob": b64e(_recovery_blob(secrets))})


def create_account(home: Home, server: str, account: str, device_name: str, passphrase: str,
                   *, collections: Iterable[str] = (), transport: httpx.BaseTransport | None = None,
                   clock: Clock = time.time) -> tuple[Device, str]:
    """Create an account with this device as its first admin; returns it and the recovery key."""
    check_name(account, "account name")
    check_name(device_name, "device name")
    names = sorted({check_collection(c) for c in collections} | {ACCOUNT_COLLECTION,
                                                                  ADMIN_COLLECTION})
    recovery = PRESecretKey.generate()
    secrets = AccountSecrets.generate(recovery.public_key)
    keys = DeviceKeys.generate()
    genesis = make_entry(secrets.account_key, account=account, seq=0, prev="",
                         time=int(clock()), type="account-created", body={
                             "account_key": b64e(secrets.account_key.verify_key.raw),
                             "kfrag_signer": b64e(secrets.kfrag_signer.public_key.raw),
                             "recovery_key": b64e(recovery.public_key.raw),
                             "sharing_key": b64e(secrets.sharing[0].public_key.raw)})
    chainer = _Chainer(secrets, account, 0, genesis.digest, clock)
    for name in names:
        chainer.collection(name)
    body = {**keys.public_body(device_name), "role": "admin", "scopes": names}
    chainer.add("device-added", body, sign_device_statement(keys.signing, account, body))
    anon = ServiceClient(server, transport=transport, clock=clock)
    anon.post("/accounts", {"account": account,
                            "entries": [e.to_json() for e in [genesis, *chainer.entries]],
                            "recovery_blob": b64e(_recovery_blob(secrets))}, signed=False)
    _new_home(home, server, account, device_name, passphrase, keys,
              secrets.account_key.verify_key)
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    device.set_secrets(secrets)
    device.client.put(path("accounts", account, "grants"),
                      {"grants": _grants(secrets, keys.device_id, keys.pre.public_key, names)})
    device.chain()
    Collection(device, ACCOUNT_COLLECTION).put("sharing-0", secrets.sharing[0].to_bytes())
    _publish_secrets(device, secrets)
    return device, format_recovery_key(recovery)


# ----------------------------------------------------------------------------- pairing
def short_authentication_string(code: str, device_key: bytes, account_key: bytes) -> str:
    """Six digits both sides compute; equal only if neither key was swapped in transit."""
    d = hashlib.sha256(labels.SAS_LABEL + b"\x00" + code.strip().upper().encode() + b"\x00"
                       + device_key + account_key).digest()
    n = int.from_bytes(d[:8], "big") % 1_000_000
    return f"{n // 1000:03d} {n % 1000:03d}"


@dataclass(frozen=True)
class JoinTicket:
    code: str
    token: str
    sas: str
    account_fingerprint: str
    device_fingerprint: str


def start_join(home: Home, server: str, account: str, device_name: str, passphrase: str, *,
               transport: httpx.BaseTransport | None = None,
               clock: Clock = time.time) -> JoinTicket:
    """Ask to join ``account``: creates this device's keys and a pairing code."""
    check_name(device_name, "device name")
    anon = ServiceClient(server, transport=transport, clock=clock)
    state, _ = fetch_chain(anon, account)
    keys = DeviceKeys.generate()
    body = keys.public_body(device_name)
    resp = anon.post(path("accounts", account, "pairing"), {
        "device": body,
        "statement_sig": b64e(sign_device_statement(keys.signing, account, body))},
        signed=False)
    store = _new_home(home, server, account, device_name, passphrase, keys, state.account_key)
    store.data["pairing"] = {"code": resp["code"], "token": resp["token"]}
    store.save()
    return JoinTicket(resp["code"], resp["token"],
                      short_authentication_string(resp["code"], keys.signing.verify_key.raw,
                                                  state.account_key.raw),
                      state.account_key.fingerprint, keys.signing.verify_key.fingerprint)


def wait_for_approval(home: Home, passphrase: str, wait: float, *,
                      transport: httpx.BaseTransport | None = None, clock: Clock = time.time,
                      sleep: Callable[[float], None] = time.sleep) -> Device | None:
    """Poll until an admin approves; returns the ready device, or None on timeout."""
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    ticket = device.keystore.data.get("pairing")
    if ticket is None:
        return device
    deadline = time.monotonic() + wait
    while True:
        status = device.client.get(path("pairing", ticket["code"], "status"),
                                   params={"token": ticket["token"]}, signed=False)["status"]
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
        if rec is None:
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
        device.account, parse_json_object(raw, what="pairing request"))
    account_key = device.chain().account_key.raw
    return PairingDetails(code, body, sig, key.fingerprint,
                          short_authentication_string(code, key.raw, account_key))


def _require_admin(device: Device) -> AccountSecrets:
    secrets = device.secrets
    if secrets is None or device.me().role != "admin":
        raise Forbidden("only an admin device can do this")
    return secrets


def approve_device(device: Device, details: PairingDetails, role: str = "member",
                   scopes: Sequence[str] | None = None) -> DeviceInfo:
    """Add the joining device to the chain and grant it its scopes."""
    secrets = _require_admin(device)
    state = device.chain()
    available = sorted(n for n in state.collections if not n.startswith("_"))
    wanted = available if scopes is None else [check_collection(s) for s in scopes]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise FormatError(f"unknown scope {unknown[0]!r}; the account has: {', '.join(available)}")
    if role not in ("admin", "member"):
        raise FormatError("role must be admin or member")
    final = _device_scopes(role, wanted)
    body = {**details.device, "role": role, "scopes": final}
    chainer = _Chainer(secrets, device.account, state.seq, state.head, device.clock)
    chainer.add("device-added", body, details.statement_sig)
    pre = PREPublicKey(b64d(body["pre_key"], size=33, what="pre key"))
    device.client.post(path("accounts", device.account, "pairing", details.code, "approve"), {
        "device_id": body["id"], "entries": [e.to_json() for e in chainer.entries],
        "grants": _grants(secrets, body["id"], pre, final)})
    return device.chain().devices[body["id"]]


def ensure_collections(device: Device, names: Iterable[str]) -> list[str]:
    """Create collections the account lacks (an adapter installed later); admin only."""
    state = device.chain()
    missing = sorted({check_collection(n) for n in names} - set(state.collections))
    if not missing:
        return []
    secrets = _require_admin(device)
    chainer = _Chainer(secrets, device.account, state.seq, state.head, device.clock)
    for name in missing:
        chainer.collection(name)
    # Admins read every collection: without the scope the service refuses them the new ones.
    for d in state.live_devices:
        if d.role == "admin":
            chainer.add("scopes-changed", {"id": d.id, "scopes": sorted({*d.scopes, *missing})})
    device.client.post(path("accounts", device.account, "chain"),
                       {"entries": [e.to_json() for e in chainer.entries]})
    admins = [d for d in device.chain().live_devices if d.role == "admin"]
    grants = [g for d in admins for g in _grants(secrets, d.id, d.pre_key, missing)]
    device.client.put(path("accounts", device.account, "grants"), {"grants": grants})
    _publish_secrets(device, secrets)
    return missing


def remove_device(device: Device, name: str) -> DeviceInfo:
    """Cut a device out: chain entry, grants gone, new epochs, a new sharing key."""
    secrets = _require_admin(device)
    state = device.chain()
    target = state.device_by_name(name) or (
        state.devices.get(name) if name in state.devices and state.devices[name].live else None)
    if target is None:
        raise NotFound(f"no live device named {name!r}")
    if target.id == device.device_id:
        raise Forbidden("a device cannot remove itself; remove it from another admin device")
    chainer = _Chainer(secrets, device.account, state.seq, state.head, device.clock)
    chainer.add("device-removed", {"id": target.id})
    for coll in sorted(target.scopes):
        info = state.collection(coll)
        chainer.epoch(coll, info.public_key, info.current_epoch + 1)
    sharing = PRESecretKey.generate()
    gen = state.sharing_generation + 1
    secrets.sharing[gen] = sharing
    chainer.add("sharing-key", {"generation": gen, "public_key": b64e(sharing.public_key.raw)})
    device.client.post(path("accounts", device.account, "chain"),
                       {"entries": [e.to_json() for e in chainer.entries]})
    device.chain()
    Collection(device, ACCOUNT_COLLECTION).put(f"sharing-{gen}", sharing.to_bytes())
    _publish_secrets(device, secrets)
    return target


def recover_account(home: Home, server: str, account: str, recovery_key: str,
                    device_name: str, passphrase: str, *,
                    transport: httpx.BaseTransport | None = None,
                    clock: Clock = time.time) -> Device:
    """Restore the account's secrets with the recovery key onto a new admin device."""
    check_name(device_name, "device name")
    sk = parse_recovery_key(recovery_key)
    anon = ServiceClient(server, transport=transport, clock=clock)
    state, _ = fetch_chain(anon, account)
    if state.recovery_key != sk.public_key:
        raise DecryptionFailed("that recovery key does not belong to this account")
    blob = b64d(anon.get(path("accounts", account, "recovery"), signed=False)["blob"])
    cut = _umbral.CAPSULE_SIZE
    secrets = AccountSecrets.from_bytes(_umbral.decrypt(sk, blob[:cut], blob[cut:]))
    if secrets.account_key.verify_key != state.account_key:
        raise VerificationError("the recovered secrets do not match the account chain")
    keys = DeviceKeys.generate()
    names = sorted(n for n in state.collections if not n.startswith("_"))
    scopes = _device_scopes("admin", names)
    body = {**keys.public_body(device_name), "role": "admin", "scopes": scopes}
    chainer = _Chainer(secrets, account, state.seq, state.head, clock)
    chainer.add("device-added", body, sign_device_statement(keys.signing, account, body))
    # Not a live device yet: the recovery key itself authorizes this append.
    anon.post(path("accounts", account, "chain"),
              {"entries": [e.to_json() for e in chainer.entries],
               "recovery_sig": b64e(_umbral.sign(sk, recovery_append_message(chainer.entries)))},
              signed=False)
    _new_home(home, server, account, device_name, passphrase, keys, state.account_key)
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    device.set_secrets(secrets)
    device.client.put(path("accounts", account, "grants"),
                      {"grants": _grants(secrets, keys.device_id, keys.pre.public_key, scopes)})
    device.chain()
    return device


