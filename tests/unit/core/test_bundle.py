"""Plans: a bundle is built purely, every entry checked as the service will check it."""

from __future__ import annotations

import pytest
from keystead.core import _umbral
from keystead.core._encoding import b64d, b64e
from keystead.core._umbral import PRESecretKey
from keystead.core.bundle import Plan, bundle_digest, recovery_blob
from keystead.core.chain import make_entry, sign_device_statement, verify_chain
from keystead.core.errors import FormatError, InvalidSignature, VerificationError
from keystead.core.items import ItemVerifier, SealedItem, open_item
from keystead.core.keys import AccountSecrets, DeviceKeys

NOW = 1_700_000_000.0


def genesis_plan() -> tuple[Plan, PRESecretKey]:
    recovery = PRESecretKey.generate()
    secrets = AccountSecrets.generate(recovery.public_key)
    first = make_entry(
        secrets.account_key,
        account="alice",
        seq=0,
        prev="",
        time=int(NOW),
        type="account-created",
        body={
            "account_key": b64e(secrets.account_key.verify_key.raw),
            "kfrag_signer": b64e(secrets.kfrag_signer.public_key.raw),
            "recovery_key": b64e(recovery.public_key.raw),
            "sharing_key": b64e(secrets.sharing[0].public_key.raw),
        },
    )
    return Plan(secrets, verify_chain([first], account="alice"), lambda: NOW), recovery


def test_collections_start_at_epoch_one_with_their_secret_kept() -> None:
    plan, _ = genesis_plan()
    plan.collection("notes", "items")
    plan.collection("documents/x", "keys")
    assert plan.state.collection("notes").current_epoch == 1
    assert plan.secrets.epoch_secret("notes", 1) is not None
    assert plan.secrets.epoch_secret("documents/x", 1) is not None
    assert ("notes", 1) in plan.data_keys and ("documents/x", 1) not in plan.data_keys
    assert plan.epoch("notes") == 2
    assert len(plan.entries) == 5 and plan.base.seq == 0 and plan.state.seq == 5


def test_an_entry_the_service_would_refuse_is_refused_while_building() -> None:
    plan, _ = genesis_plan()
    plan.collection("notes", "items")
    with pytest.raises(VerificationError):
        plan.add("device-removed", {"id": "0" * 16})
    with pytest.raises(FormatError):
        plan.add("collection-created", {"name": "x"})
    assert len(plan.entries) == 2  # nothing half-added


def test_an_admin_lacking_the_newest_secret_cannot_start_an_epoch() -> None:
    plan, _ = genesis_plan()
    plan.collection("notes", "items")
    del plan.secrets.epochs["notes"]
    with pytest.raises(KeyError, match="newest secret"):
        plan.epoch("notes")
    with pytest.raises(KeyError):
        plan.grant("notes", 1, "device", "0" * 16, 0, PRESecretKey.generate().public_key)


def test_items_are_sealed_under_the_epoch_the_new_chain_makes_current() -> None:
    plan, _ = genesis_plan()
    keys = DeviceKeys.generate()
    plan.collection("notes", "items")
    plan.epoch("notes")
    plan.put_item("notes", "a", b"hello", 1, keys.device_id, keys.signing)
    [wire] = plan.to_json()["items"]
    coll = wire.pop("collection")
    item = SealedItem.from_json(wire)
    assert (coll, item.epoch, item.writer) == ("notes", 2, keys.device_id)
    ItemVerifier().verify(item, keys.signing.verify_key, account="alice", collection="notes")
    assert (
        open_item(plan.data_keys[("notes", 2)], account="alice", collection="notes", item=item)
        == b"hello"
    )


def test_rotation_signs_with_the_new_key_from_then_on() -> None:
    plan, _ = genesis_plan()
    old = plan.secrets.account_key
    plan.rotate_account_key()
    assert plan.rotated and plan.secrets.key_generation == 1
    assert plan.secrets.account_key.verify_key != old.verify_key
    assert plan.state.signing_key == plan.secrets.account_key.verify_key
    keys = DeviceKeys.generate()
    body = {**keys.public_body("phone"), "role": "member", "scopes": ["_account"]}
    plan.collection("_account", "items")
    plan.add("device-added", body, sign_device_statement(keys.signing, "alice", body))
    assert keys.device_id in plan.state.devices


def test_the_wire_form_and_what_the_recovery_key_signs() -> None:
    plan, recovery = genesis_plan()
    plan.collection("notes", "items")
    wire = plan.to_json()
    assert wire["base"] == {"seq": 0, "head": plan.base.head}
    assert len(wire["entries"]) == 2 and wire["grants"] == [] and wire["delete_grants"] == []
    blob = b64d(wire["recovery_blob"])
    again = AccountSecrets.from_bytes(_umbral.decrypt(recovery, blob[:105], blob[105:]))
    assert again.to_bytes() == plan.secrets.to_bytes()
    assert "recovery_blob" not in plan.to_json(with_recovery=False)
    digest = bundle_digest(wire)
    assert bundle_digest({**wire, "recovery_sig": "x"}) == digest  # the signature is left out
    assert bundle_digest({**wire, "grants": [{"key": "notes"}]}) != digest
    assert bundle_digest({**wire, "base": {"seq": 1, "head": ""}}) != digest
    assert recovery_blob(plan.secrets) != recovery_blob(plan.secrets)  # fresh capsule each


def test_items_of_several_writers_and_collections_are_signed_per_writer() -> None:
    plan, _ = genesis_plan()
    one, two = DeviceKeys.generate(), DeviceKeys.generate()
    plan.collection("notes", "items")
    plan.collection("_admin", "items")
    plan.put_item("notes", "a", b"1", 1, one.device_id, one.signing)
    plan.put_item("notes", "b", b"2", 1, two.device_id, two.signing)
    plan.put_item("_admin", "c", b"3", 1, one.device_id, one.signing)
    plan.put_item("notes", "d", b"4", 1, one.device_id, one.signing)
    wire = plan.to_json()["items"]
    assert sorted((w["collection"], w["id"]) for w in wire) == [
        ("_admin", "c"),
        ("notes", "a"),
        ("notes", "b"),
        ("notes", "d"),
    ]
    keys = {one.device_id: one, two.device_id: two}
    verifier = ItemVerifier()
    for w in wire:
        coll = w.pop("collection")
        item = SealedItem.from_json(w)
        verifier.verify(
            item, keys[item.writer].signing.verify_key, account="alice", collection=coll
        )
        other = two if item.writer == one.device_id else one
        with pytest.raises(InvalidSignature):
            ItemVerifier().verify(item, other.signing.verify_key, account="alice", collection=coll)
