"""Item writes and bundles through the service, in process: what is refused (stale epochs,
foreign writers, bad signatures, stale heads) changes nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from core_harness import PASSPHRASE, InProcessService
from keystead.core import account as acct
from keystead.core._encoding import b64e
from keystead.core.bundle import Plan
from keystead.core.chain import make_entry
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.errors import (
    DeviceRemoved,
    Forbidden,
)
from keystead.core.home import Home
from keystead.core.items import sign_items
from keystead.core.keys import AccountSecrets
from service_requests import (
    post_items,
    put_body,
    sealed,
    signed,
    snapshot,
)


@pytest.mark.parametrize(
    "change,status",
    [
        ("not a list", 400),
        ("not an object", 400),
        ({"id": "a b"}, 400),
        ({"ciphertext": "A="}, 400),
        ({"version": 0}, 400),
        ({"writer": "laptop"}, 400),
        ({"sig": "AA"}, 400),
        ("stale", 409),  # "first" exists at version 1 already
    ],
)
def test_bad_item_writes_are_refused_and_change_nothing(
    svc: InProcessService, alice: Device, change: Any, status: int
) -> None:
    good = sealed(alice).to_json()
    items: Any = (
        "x"
        if change == "not a list"
        else [1]
        if change == "not an object"
        else [sealed(alice, "first").to_json()]
        if change == "stale"
        else [{**good, **change}]
    )
    body = json.dumps({"items": items}).encode()
    before = snapshot(svc, alice.account)
    r = post_items(svc, alice, body)
    assert r.status_code == status and set(r.json()) == {"error", "message"}, r.text
    assert snapshot(svc, alice.account) == before
    assert post_items(svc, alice, put_body(alice)).status_code == 200  # the base was valid


# ---------------------------------------------------------------- what v2 items must be
def _new_epoch(alice: Device, coll: str = "notes") -> None:
    """A new epoch of ``coll``, granted to ``alice``, sent as one bundle."""
    plan = Plan(_secrets(alice), alice.chain(), alice.clock)
    plan.epoch(coll)
    plan.grant_device(coll, alice.device_id, alice.keys.pre.public_key)
    alice.client.post(f"/accounts/{alice.account}/bundle", plan.to_json())
    alice.set_secrets(plan.secrets)
    alice.chain()


def _secrets(dev: Device) -> AccountSecrets:
    secrets = dev.secrets
    assert secrets is not None
    return secrets


def test_item_under_a_non_current_epoch_is_409(svc: InProcessService, alice: Device) -> None:
    old = sealed(alice, "late")
    assert old.epoch == 1
    _new_epoch(alice)
    before = snapshot(svc, alice.account)
    r = post_items(svc, alice, put_body(alice, old))
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    assert "epoch" in r.json()["message"]
    assert snapshot(svc, alice.account) == before
    fresh = sealed(alice, "late")
    assert fresh.epoch == 2
    assert post_items(svc, alice, put_body(alice, fresh)).status_code == 200


def test_item_under_an_epoch_the_chain_lacks_is_409(svc: InProcessService, alice: Device) -> None:
    item = replace(sealed(alice), epoch=7)
    before = snapshot(svc, alice.account)
    r = post_items(svc, alice, put_body(alice, item))
    assert r.status_code == 409
    assert snapshot(svc, alice.account) == before


def test_item_with_a_bad_signature_is_refused(svc: InProcessService, alice: Device) -> None:
    good = sealed(alice)
    stranger = acct.DeviceKeys.generate().signing
    # Naming alice as its writer, signed by another key.
    [forged] = sign_items(stranger, account=alice.account, collection="notes", items=[good])
    before = snapshot(svc, alice.account)
    for bad in (
        forged,
        replace(good, signature=bytes(64)),
        replace(good, proof=good.proof[:2] + b"\x00\x02"),
    ):
        r = post_items(svc, alice, put_body(alice, bad))
        # A signature that does not verify is the one 401 of the error table.
        assert r.status_code == 401 and r.json()["error"] == "invalid_signature", r.text
    assert snapshot(svc, alice.account) == before
    assert post_items(svc, alice, put_body(alice, good)).status_code == 200


def test_item_naming_another_writer_is_403(svc: InProcessService, alice: Device) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    by_alice = sealed(alice, "mine")
    before = snapshot(svc, alice.account)
    r = post_items(svc, phone, put_body(phone, by_alice))  # phone sends what alice signed
    assert r.status_code == 403 and "writer" in r.json()["message"]
    by_phone = sealed(phone, "theirs")
    r = post_items(svc, alice, put_body(alice, by_phone))  # and the other way round
    assert r.status_code == 403
    assert snapshot(svc, alice.account) == before
    assert post_items(svc, phone, put_body(phone, by_phone)).status_code == 200


def test_member_writes_to_account_and_admin_are_403(svc: InProcessService, alice: Device) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    assert "_account" in phone.me().scopes and "_admin" not in phone.me().scopes
    colls = ("_account", "_admin")
    before = {c: svc.store.changes(alice.account, c, 0, 100) for c in colls}
    item = sealed(phone, "sharing-9", coll="_account")
    r = post_items(svc, phone, put_body(phone, item), "_account")
    assert r.status_code == 403 and "admin" in r.json()["message"]
    with pytest.raises(Forbidden):
        Collection(phone, "_account").put("sharing-9", b"x")
    # _admin: sealed with the key an admin has, sent by the member.
    admin_item = sealed(alice, "secrets", coll="_admin", version=2, writer=phone)
    r = post_items(svc, phone, put_body(phone, admin_item), "_admin")
    assert r.status_code == 403
    assert {c: svc.store.changes(alice.account, c, 0, 100) for c in colls} == before
    # The admin itself writes _account.
    assert (
        post_items(
            svc, alice, put_body(alice, sealed(alice, "x", coll="_account")), "_account"
        ).status_code
        == 200
    )


@pytest.mark.parametrize("size", [0, 27, 2 * 1024 * 1024])
def test_item_with_an_impossible_ciphertext_length_is_400(
    svc: InProcessService, alice: Device, size: int
) -> None:
    good = sealed(alice).to_json()
    body = json.dumps({"items": [{**good, "ciphertext": b64e(bytes(size))}]}).encode()
    before = snapshot(svc, alice.account)
    r = post_items(svc, alice, body)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    assert "length" in r.json()["message"]
    assert snapshot(svc, alice.account) == before


# ---------------------------------------------------------------- bundles
def _device_plan(alice: Device, name: str) -> tuple[acct.DeviceKeys, Plan]:
    keys = acct.DeviceKeys.generate()
    body = {**keys.public_body(name), "role": "member", "scopes": ["_account", "notes"]}
    plan = Plan(_secrets(alice), alice.chain(), alice.clock)
    plan.add("device-added", body, acct.sign_device_statement(keys.signing, alice.account, body))
    plan.grant_device("notes", keys.device_id, keys.pre.public_key)
    plan.put_item("notes", f"by-{name}", b"hi", 1, alice.device_id, alice.keys.signing)
    return keys, plan


def _post_bundle(svc: InProcessService, dev: Device, wire: dict[str, Any]) -> httpx.Response:
    path = f"/v1/accounts/{dev.account}/bundle"
    body = json.dumps(wire).encode()
    with svc.http() as http:
        return http.post(path, content=body, headers=signed(dev, "POST", path, body))


def full_snapshot(svc: InProcessService, account: str) -> dict[str, Any]:
    return {
        **snapshot(svc, account),
        "recovery": svc.store.recovery_blob(account),
        "devices": sorted(svc.store.chain_state(account).devices),
    }


def test_bundle_on_a_stale_head_is_409_and_nothing_of_it_is_stored(
    svc: InProcessService, alice: Device
) -> None:
    phone, first = _device_plan(alice, "phone")
    tablet, second = _device_plan(alice, "tablet")  # on the same head
    assert _post_bundle(svc, alice, first.to_json()).status_code == 200
    before = full_snapshot(svc, alice.account)
    r = _post_bundle(svc, alice, second.to_json())
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    after = full_snapshot(svc, alice.account)
    assert after == before
    assert tablet.device_id not in after["devices"]
    assert not any(g.target == tablet.device_id for g in after["grants"])
    assert "by-tablet" not in [i.id for i in after["items"]["notes"]]


def test_resending_an_applied_bundle_succeeds_and_stores_nothing_twice(
    svc: InProcessService, alice: Device
) -> None:
    phone, plan = _device_plan(alice, "phone")
    wire = plan.to_json()
    r1 = _post_bundle(svc, alice, wire)
    assert r1.status_code == 200
    after = full_snapshot(svc, alice.account)
    r2 = _post_bundle(svc, alice, wire)  # the answer was lost; the same bundle again
    assert r2.status_code == 200 and r2.json() == r1.json()
    assert full_snapshot(svc, alice.account) == after
    assert [i.id for i in after["items"]["notes"]].count("by-phone") == 1
    assert [g.target for g in after["grants"]].count(phone.device_id) == 1


def _scope_bundle(dev: Device, secrets: AccountSecrets) -> dict[str, Any]:
    """A valid bundle, signed with ``secrets``' account key, that adds a scope to ``dev``."""
    plan = Plan(secrets, dev.chain(), dev.clock)
    plan.add("scopes-changed", {"id": dev.device_id, "scopes": ["_account", "_admin", "notes"]})
    return plan.to_json(with_recovery=False)


def test_bundle_needs_a_live_admin_not_only_the_account_key(
    svc: InProcessService, alice: Device
) -> None:
    """Whoever holds the current account key (a stolen copy, a member) cannot write alone; a
    removed admin, whose key was rotated away, is refused as a device."""
    laptop2 = svc.join(alice, "laptop2", role="admin")
    old_secrets = laptop2.secrets
    assert old_secrets is not None
    acct.remove_device(alice, "laptop2")
    assert alice.chain().key_generation == 1
    phone = svc.join(alice, "phone", scopes=["notes"])
    stolen = _scope_bundle(phone, _secrets(alice))  # valid: the current account key signs it
    before = full_snapshot(svc, alice.account)
    with svc.http() as http:
        anon = http.post(f"/v1/accounts/{alice.account}/bundle", json=stolen)
    assert anon.status_code == 403 and anon.json()["error"] == "forbidden"
    r = _post_bundle(svc, phone, stolen)  # signed by a live member, not an admin
    assert r.status_code == 403
    with pytest.raises(DeviceRemoved):
        laptop2.client.post(f"/accounts/{alice.account}/bundle", stolen)
    state = alice.chain()
    by_old_key = make_entry(
        old_secrets.account_key,
        account=alice.account,
        seq=state.seq + 1,
        prev=state.head,
        time=int(svc.clock()),
        type="scopes-changed",
        body={"id": phone.device_id, "scopes": ["_account", "notes"]},
    )
    old_bundle = {**stolen, "entries": [by_old_key.to_json()]}
    with pytest.raises(DeviceRemoved):  # and its own (old-key) bundle the same
        laptop2.client.post(f"/accounts/{alice.account}/bundle", old_bundle)
    r = _post_bundle(svc, alice, old_bundle)  # even from a live admin: the old key is dead
    assert r.status_code == 401 and r.json()["error"] == "invalid_signature"
    with svc.http() as http:
        forged = http.post(
            f"/v1/accounts/{alice.account}/bundle", json={**stolen, "recovery_sig": "AAAA"}
        )
    assert forged.status_code == 401
    assert full_snapshot(svc, alice.account) == before
    assert _post_bundle(svc, alice, stolen).status_code == 200  # from the admin it is fine


def test_recovery_key_authorizes_the_recovering_devices_append(svc: InProcessService) -> None:
    admin, recovery = svc.create("rita")
    dev = acct.recover_account(
        Home(svc.tmp / "rita-new"),
        svc.url,
        "rita",
        recovery,
        "new",
        PASSPHRASE,
        transport=svc.transport,
        clock=svc.clock,
    )
    assert dev.me().role == "admin"


@pytest.mark.parametrize("seq", [-1, -2, -1000])
def test_bundle_with_a_negative_base_is_400(svc: InProcessService, alice: Device, seq: int) -> None:
    """Even carrying the chain's own entries, which a resend check would compare."""
    entries = svc.store.chain(alice.account)
    wire = {
        "base": {"seq": seq, "head": entries[0].digest},
        "entries": [e.to_json() for e in entries[:2]],
        "grants": [],
        "delete_grants": [],
        "items": [],
    }
    before = full_snapshot(svc, alice.account)
    r = _post_bundle(svc, alice, wire)
    assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text
    assert full_snapshot(svc, alice.account) == before
