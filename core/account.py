"""Account lifecycle: create, join (pairing), approve, remove a device, recover.

Every operation that changes the account is one :class:`~.bundle.Plan` (chain
entries, grants, items, recovery blob) that the service applies in one
transaction on top of the head it was built from. Before building one, an admin
merges the newest ``_admin`` copy of the account secrets, so a key another admin
added is never dropped. A bundle is kept in the keystore until the service has
answered, so a crash or a lost answer is finished by the next command
(:func:`finish_pending`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _umbral
from ._encoding import b64d, b64e
from ._umbral import PREPublicKey, PRESecretKey
from .bundle import Plan, bundle_digest
from .chain import (
    ChainState,
    DeviceInfo,
    check_collection,
    check_name,
    make_entry,
    sign_device_statement,
)
from .client import ServiceClient, path
from .collections import Collection
from .device import Device, fetch_chain
from .errors import (
    Conflict,
    DecryptionFailed,
    Forbidden,
    FormatError,
    NotFound,
    StorageError,
    VerificationError,
)
from .home import Home
from .keys import AccountSecrets, DeviceKeys, format_recovery_key, parse_recovery_key
from .pairing import (
    JoinTicket,
    PairingDetails,
    new_home,
    pairing_details,
    start_join,
    wait_for_approval,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "JoinTicket",
    "PairingDetails",
    "approve_device",
    "create_account",
    "ensure_collections",
    "finish_pending",
    "grant_keys",
    "pairing_details",
    "recover_account",
    "refresh_grants",
    "remove_device",
    "revoke_keys",
    "start_join",
    "wait_for_approval",
]

ACCOUNT_COLLECTION = "_account"
ADMIN_COLLECTION = "_admin"
Clock = Callable[[], float]
_RETRIES = 8
"""Chain changes are optimistic: a bundle built on a head another admin moved is refused
and built again. Enough tries for a handful of admin devices changing the chain at once."""


def _device_scopes(role: str, scopes: Iterable[str]) -> list[str]:
    out = {ACCOUNT_COLLECTION, *scopes}
    if role == "admin":
        out.add(ADMIN_COLLECTION)
    return sorted(out)


def _item_version(device: Device, collection: str, item_id: str) -> int:
    current = device.cache.item(collection, item_id)
    return current.version + 1 if current else 1


def _put_secrets(plan: Plan, device: Device) -> None:
    plan.put_item(
        ADMIN_COLLECTION,
        "secrets",
        plan.secrets.to_bytes(),
        _item_version(device, ADMIN_COLLECTION, "secrets"),
        device.device_id,
        device.keys.signing,
    )


def create_account(
    home: Home,
    server: str,
    account: str,
    device_name: str,
    passphrase: str,
    *,
    collections: Iterable[str] = (),
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
) -> tuple[Device, str]:
    """Create an account with this device as its first admin; returns it and the recovery key.

    One request: the chain, the first device's grants, the sharing key and the account
    secrets as items, and the recovery blob, stored in one transaction."""
    check_name(account, "account name")
    check_name(device_name, "device name")
    names = sorted(
        {check_collection(c) for c in collections} | {ACCOUNT_COLLECTION, ADMIN_COLLECTION}
    )
    recovery = PRESecretKey.generate()
    secrets = AccountSecrets.generate(recovery.public_key)
    keys = DeviceKeys.generate()
    genesis = make_entry(
        secrets.account_key,
        account=account,
        seq=0,
        prev="",
        time=int(clock()),
        type="account-created",
        body={
            "account_key": b64e(secrets.account_key.verify_key.raw),
            "kfrag_signer": b64e(secrets.kfrag_signer.public_key.raw),
            "recovery_key": b64e(recovery.public_key.raw),
            "sharing_key": b64e(secrets.sharing[0].public_key.raw),
        },
    )
    from .chain import verify_chain

    plan = Plan(secrets, verify_chain([genesis], account=account), clock)
    for name in names:
        plan.collection(name, "items")
    body = {**keys.public_body(device_name), "role": "admin", "scopes": names}
    plan.add("device-added", body, sign_device_statement(keys.signing, account, body))
    for name in names:
        plan.grant_device(name, keys.device_id, keys.pre.public_key)
    plan.put_item(
        ACCOUNT_COLLECTION,
        "sharing-0",
        secrets.sharing[0].to_bytes(),
        1,
        keys.device_id,
        keys.signing,
    )
    plan.put_item(ADMIN_COLLECTION, "secrets", secrets.to_bytes(), 1, keys.device_id, keys.signing)
    wire = plan.to_json()
    wire["entries"].insert(0, genesis.to_json())
    del wire["base"]
    anon = ServiceClient(server, transport=transport, clock=clock)
    anon.post("/accounts", {"account": account, **wire}, signed=False)
    new_home(home, server, account, device_name, passphrase, keys, secrets.account_key.verify_key)
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    device.set_secrets(secrets)
    device.chain()
    return device, format_recovery_key(recovery)


def _require_admin(device: Device) -> AccountSecrets:
    """The newest account secrets, merged with ``_admin``'s copy; only on an admin device."""
    secrets = device.secrets
    if secrets is None or device.me().role != "admin":
        raise Forbidden("only an admin device can do this")
    coll = Collection(device, ADMIN_COLLECTION)
    coll.sync(refresh_chain=False)
    rec = coll.get("secrets")
    if rec is not None and rec.by_admin:
        secrets = secrets.merge(AccountSecrets.from_bytes(rec.plaintext))
    state = device.chain(refresh=False)
    if secrets.account_key.verify_key != state.signing_key:
        raise VerificationError("this admin's account key is not the chain's current one")
    return secrets


def _send(device: Device, plan: Plan) -> None:
    """Send a bundle; it is kept in the keystore until the service answered, so a crash or
    a lost answer is finished (or found already applied) by :func:`finish_pending`."""
    wire = plan.to_json()
    data = device.keystore.data
    data["pending"] = {"bundle": wire, "secrets": b64e(plan.secrets.to_bytes())}
    device.save()
    _deliver(device, wire)
    device.set_secrets(plan.secrets)
    data.pop("pending", None)
    device.save()
    device.chain()


def _deliver(device: Device, wire: dict[str, Any]) -> None:
    device.client.post(path("accounts", device.account, "bundle"), wire)


def finish_pending(device: Device) -> bool:
    """Resend a bundle whose answer was lost; True if one was pending. A bundle the chain
    has moved past (another change came first) is dropped: its caller builds again."""
    pending = device.keystore.data.get("pending")
    if pending is None:
        return False
    try:
        _deliver(device, pending["bundle"])
    except Conflict:
        pass  # built on a head that is gone; nothing of it was applied
    else:
        device.set_secrets(AccountSecrets.from_bytes(b64d(pending["secrets"])))
    device.keystore.data.pop("pending", None)
    device.save()
    device.chain()
    return True


def _build_and_send(device: Device, build: Callable[[Plan, ChainState], bool | None]) -> Plan:
    """Build a plan on the newest head and send it; rebuild when the head moved meanwhile
    (after a short random pause, so contenders do not collide again in step). ``build``
    returns False when the newest head already holds what it was to add: nothing is sent."""
    finish_pending(device)
    for attempt in range(_RETRIES):
        state = device.chain()
        plan = Plan(_require_admin(device), state, device.clock)
        if build(plan, state) is False:
            return plan
        try:
            _send(device, plan)
            return plan
        except Conflict:
            device.keystore.data.pop("pending", None)
            device.save()
            if attempt == _RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
    raise AssertionError("unreachable")  # pragma: no cover


def approve_device(
    device: Device,
    details: PairingDetails,
    role: str = "member",
    scopes: Sequence[str] | None = None,
) -> DeviceInfo:
    """Add the joining device to the chain and grant it the newest epoch of its scopes."""
    secrets = _require_admin(device)
    state = device.chain()
    available = sorted(
        n for n, c in state.collections.items() if not n.startswith("_") and c.kind == "items"
    )
    wanted = available if scopes is None else [check_collection(s) for s in scopes]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise FormatError(f"unknown scope {unknown[0]!r}; the account has: {', '.join(available)}")
    if role not in ("admin", "member"):
        raise FormatError("role must be admin or member")
    final = _device_scopes(role, wanted)
    body = {**details.device, "role": role, "scopes": final}
    plan = Plan(secrets, state, device.clock)
    plan.add("device-added", body, details.statement_sig)
    pre = PREPublicKey(b64d(body["pre_key"], size=33, what="pre key"))
    for name in final:
        plan.grant_device(name, body["id"], pre)
    device.client.post(
        path("accounts", device.account, "pairing", details.code, "approve"),
        {"device_id": body["id"], **plan.to_json(with_recovery=False)},
    )
    return device.chain().devices[body["id"]]


def ensure_collections(device: Device, names: Iterable[str], kind: str = "items") -> list[str]:
    """Create collections the account lacks (an adapter installed later, a label, a group);
    admin only. Items collections are granted to every admin device; keys collections
    (labels, groups) to the account itself, so every device with the scope opens them."""
    wanted = sorted({check_collection(n) for n in names})
    if not set(wanted) - set(device.chain().collections):
        return []
    created: list[str] = []

    def build(plan: Plan, state: ChainState) -> bool:
        created[:] = [n for n in wanted if n not in state.collections]
        if not created:  # another admin created them meanwhile
            return False
        for name in created:
            plan.collection(name, kind)
        admins = [d for d in state.live_devices if d.role == "admin"]
        if kind == "items":
            for d in admins:
                plan.add("scopes-changed", {"id": d.id, "scopes": sorted({*d.scopes, *created})})
                for name in created:
                    plan.grant_device(name, d.id, d.pre_key)
        else:
            for name in created:
                plan.grant(
                    name, 1, "account", state.account, state.sharing_generation, state.sharing_key
                )
        _put_secrets(plan, device)
        return True

    _build_and_send(device, build)
    return created


def _regrant_keys(
    plan: Plan, device: Device, name: str, grants: Sequence[dict[str, Any]], *, all_epochs: bool
) -> None:
    """Account grants of keys collection ``name`` for its newest epoch (or every epoch), to
    this account's newest sharing key and each other grantee's current one."""
    state = plan.state
    coll = state.collection(name)
    epochs = sorted(coll.epochs) if all_epochs else [coll.current_epoch]
    targets: dict[str, tuple[int, PREPublicKey, int | None]] = {
        state.account: (state.sharing_generation, state.sharing_key, None)
    }
    for g in grants:
        if g["key"] == name and g["target_kind"] == "account" and g["target"] != state.account:
            peer = device.peer_chain(g["target"])
            targets[g["target"]] = (peer.sharing_generation, peer.sharing_key, g["expires"])
    for target, (gen, pk, expires) in sorted(targets.items()):
        for e in epochs:
            plan.grant(name, e, "account", target, gen, pk, expires)


def _grants(device: Device) -> list[dict[str, Any]]:
    resp = device.client.get(path("accounts", device.account, "grants"))
    return list(resp["grants"])


def remove_device(device: Device, name: str) -> DeviceInfo:
    """Cut a device out, in one bundle: chain entry; for an admin, a new account key and
    kfrag signer; a new epoch (fresh key pair) of every collection it could read, granted
    to the remaining devices only; a new sharing key; the labels and groups re-granted."""
    state = device.chain()
    target = state.device_by_name(name) or (
        state.devices.get(name) if name in state.devices and state.devices[name].live else None
    )
    if target is None:
        raise NotFound(f"no live device named {name!r}")
    if target.id == device.device_id:
        raise Forbidden("a device cannot remove itself; remove it from another admin device")
    grants = _grants(device)

    def build(plan: Plan, state: ChainState) -> None:
        plan.add("device-removed", {"id": target.id})
        if target.role == "admin":
            plan.rotate_account_key()
        sharing = PRESecretKey.generate()
        gen = state.sharing_generation + 1
        plan.secrets.sharing[gen] = sharing
        plan.add("sharing-key", {"generation": gen, "public_key": b64e(sharing.public_key.raw)})
        readable = set(state.collections) if target.role == "admin" else set(target.scopes)
        keys_colls = sorted(n for n, c in state.collections.items() if c.kind == "keys")
        for coll in sorted(readable | set(keys_colls)):
            plan.epoch(coll)
        live = [d for d in plan.state.live_devices]
        for coll in sorted(n for n, c in plan.state.collections.items() if c.kind == "items"):
            if coll in readable or plan.rotated:
                for d in live:
                    if coll in d.scopes:
                        plan.grant_device(coll, d.id, d.pre_key)
        for coll in keys_colls:
            _regrant_keys(plan, device, coll, grants, all_epochs=True)
        plan.put_item(
            ACCOUNT_COLLECTION,
            f"sharing-{gen}",
            sharing.to_bytes(),
            1,
            device.device_id,
            device.keys.signing,
        )
        _put_secrets(plan, device)

    _build_and_send(device, build)
    return target


def refresh_grants(device: Device) -> list[str]:
    """On an admin device's sync: a grantee account whose sharing key moved on (it removed
    a device) gets this account's labels and groups re-granted to its new key, on a new
    epoch, so its removed device is cut out cryptographically. Returns the keys renewed."""
    if device.secrets is None or device.me().role != "admin":
        return []
    grants = _grants(device)
    stale: set[str] = set()
    for g in grants:
        if g["target_kind"] != "account":
            continue
        current = (
            device.chain(refresh=False).sharing_generation
            if g["target"] == device.account
            else device.peer_chain(g["target"]).sharing_generation
        )
        if g["target_generation"] < current:
            stale.add(g["key"])
    if not stale:
        return []

    def build(plan: Plan, state: ChainState) -> None:
        for name in sorted(stale):
            plan.epoch(name)
            _regrant_keys(plan, device, name, grants, all_epochs=True)
        _put_secrets(plan, device)

    _build_and_send(device, build)
    return sorted(stale)


def grant_keys(
    device: Device, key: str, account: str, *, expires: int | None = None, server: str | None = None
) -> None:
    """Let ``account`` (its current sharing key) open what is sealed to any epoch of ``key``."""
    state = device.chain()
    if key not in state.collections or state.collections[key].kind != "keys":
        raise NotFound(f"no label or group key {key!r} in this account")
    other = state if account == device.account else device.peer_chain(account, server)

    def build(plan: Plan, state: ChainState) -> None:
        for e in sorted(state.collection(key).epochs):
            plan.grant(
                key, e, "account", account, other.sharing_generation, other.sharing_key, expires
            )

    _build_and_send(device, build)


def revoke_keys(device: Device, key: str, account: str) -> None:
    """Delete ``account``'s grants to ``key`` and start a new epoch, granted to the others:
    the revoked account, even holding an old kfrag, opens nothing sealed afterwards."""
    grants = _grants(device)
    if not any(
        g["key"] == key and g["target_kind"] == "account" and g["target"] == account for g in grants
    ):
        raise NotFound("no such grant")
    rest = [g for g in grants if not (g["target_kind"] == "account" and g["target"] == account)]

    def build(plan: Plan, state: ChainState) -> None:
        plan.delete_grants(key, "account", account)
        plan.epoch(key)
        _regrant_keys(plan, device, key, rest, all_epochs=False)
        _put_secrets(plan, device)

    _build_and_send(device, build)


def recover_account(
    home: Home,
    server: str,
    account: str,
    recovery_key: str,
    device_name: str,
    passphrase: str,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
) -> Device:
    """Restore the account's secrets with the recovery key onto a new admin device: one
    bundle (the device entry and its grants), authorized by the recovery key's signature.

    The new home (keys, secrets, the bundle) is written before the bundle is sent, so a
    recovery cut short by a crash or a lost answer is finished by running it again in the
    same home."""
    check_name(device_name, "device name")
    sk = parse_recovery_key(recovery_key)
    anon = ServiceClient(server, transport=transport, clock=clock)
    if home.exists:
        return _finish_recovery(home, anon, account, passphrase, transport, clock)
    state, _ = fetch_chain(anon, account)
    if state.recovery_key != sk.public_key:
        raise DecryptionFailed("that recovery key does not belong to this account")
    blob = b64d(anon.get(path("accounts", account, "recovery"), signed=False)["blob"])
    cut = _umbral.CAPSULE_SIZE
    if len(blob) <= cut:
        raise FormatError("the recovery blob is truncated")
    secrets = AccountSecrets.from_bytes(_umbral.decrypt(sk, blob[:cut], blob[cut:]))
    if secrets.account_key.verify_key != state.signing_key:
        raise VerificationError("the recovered secrets do not match the account chain")
    keys = DeviceKeys.generate()
    names = sorted(
        n for n, c in state.collections.items() if not n.startswith("_") and c.kind == "items"
    )
    scopes = _device_scopes("admin", names)
    body = {**keys.public_body(device_name), "role": "admin", "scopes": scopes}
    plan = Plan(secrets, state, clock)
    plan.add("device-added", body, sign_device_statement(keys.signing, account, body))
    for name in scopes:
        plan.grant_device(name, keys.device_id, keys.pre.public_key)
    wire = plan.to_json(with_recovery=False)
    wire["recovery_sig"] = b64e(_umbral.sign(sk, bundle_digest(wire)))
    store = new_home(home, server, account, device_name, passphrase, keys, state.account_key)
    store.data["secrets"] = b64e(secrets.to_bytes())
    store.data["recovering"] = wire
    store.save()
    return _finish_recovery(home, anon, account, passphrase, transport, clock)


def _finish_recovery(
    home: Home,
    anon: ServiceClient,
    account: str,
    passphrase: str,
    transport: httpx.BaseTransport | None,
    clock: Clock,
) -> Device:
    device = Device.open(home, passphrase, transport=transport, clock=clock)
    wire = device.keystore.data.get("recovering")
    if device.account != account or wire is None:
        raise StorageError(f"{home.path} already holds a device; use another KEYSTEAD_HOME")
    try:
        anon.post(path("accounts", account, "bundle"), wire, signed=False)
    except Conflict:
        # Applied already (only the answer was lost) if our device is in the chain.
        state, _ = fetch_chain(anon, account)
        if device.device_id not in state.devices:
            raise Conflict(
                "the account changed while recovering: remove this home and run the recovery again"
            ) from None
    del device.keystore.data["recovering"]
    device.save()
    device.chain()
    return device
