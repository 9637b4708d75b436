"""The service's storage of items, grants and re-encryption, on SQLite and PostgreSQL alike:
refusals never change stored data."""

from __future__ import annotations

from dataclasses import replace

import pytest
from keystead.core._umbral import PRESecretKey, make_kfrag
from keystead.core.crypto import SigningKey
from keystead.core.errors import (
    Conflict,
    DeviceRemoved,
    Forbidden,
    FormatError,
    InvalidSignature,
    NotFound,
    VerificationError,
)
from keystead.core.items import ItemVerifier, SealedItem, sign_items
from keystead.core.keys import DeviceKeys
from store_accounts import NOW, Acct, auth, current_capsule


# -------------------------------------------------------------------------------- items
def test_items_versions_and_changes(a: Acct) -> None:
    # change numbers count per collection (the _admin secrets are 1 in _admin, not in notes)
    assert a.put([a.item("a", 1), a.item("b", 1)]) == [1, 2]
    assert a.put([a.item("a", 2, b"y")]) == [3]
    changes = a.store.changes(a.name, "notes", 0, 100)
    assert [(i.id, i.version, i.seq) for i in changes] == [("b", 1, 2), ("a", 2, 3)]
    assert [i.id for i in a.store.changes(a.name, "notes", 2, 100)] == ["a"]
    assert a.store.changes(a.name, "ssh", 0, 100) == []
    stored = changes[-1]
    assert stored.writer == a.admin.device_id
    ItemVerifier().verify(
        stored, a.admin.signing.verify_key, account=a.name, collection="notes"
    )  # stored as signed, proof and all


@pytest.mark.parametrize(
    "stale", [[("a", 2)], [("a", 1)], [("a", 4)], [("new", 1), ("a", 2)], [("new", 2)]]
)
def test_stale_write_is_a_conflict_and_changes_nothing(
    a: Acct, stale: list[tuple[str, int]]
) -> None:
    a.put([a.item("a", 1)])
    a.put([a.item("a", 2, b"v2")])
    before = a.snapshot()
    with pytest.raises(Conflict):
        a.put([a.item(i, v) for i, v in stale])
    assert a.snapshot() == before
    assert a.put([a.item("z", 1)]) == [3]  # seq not consumed


def test_same_item_twice_in_one_write_is_refused(a: Acct) -> None:
    with pytest.raises(FormatError):
        a.put([a.item("a", 1), a.item("a", 2)])
    assert a.snapshot()["items"]["notes"] == []


def _new_epoch(a: Acct, coll: str = "notes") -> None:
    plan = a.plan()
    plan.epoch(coll)
    plan.grant_device(coll, a.admin.device_id, a.admin.pre.public_key)
    a.apply(plan)


def test_item_under_a_non_current_epoch_is_a_conflict(a: Acct) -> None:
    old = a.item("a", 1)
    _new_epoch(a)
    before = a.snapshot()
    with pytest.raises(Conflict, match="epoch"):
        a.put([old])
    with pytest.raises(Conflict, match="epoch"):  # one stale item spoils the whole write
        a.put([a.item("b", 1), old])
    assert a.snapshot() == before
    a.put([a.item("a", 1)])  # sealed again under epoch 2
    assert [i.epoch for i in a.store.changes(a.name, "notes", 0, 10)] == [2]


def _signed_by(a: Acct, item: SealedItem, key: SigningKey) -> SealedItem:
    """``item`` as it is (naming its writer), signed with ``key`` instead."""
    return sign_items(key, account=a.name, collection="notes", items=[item])[0]


def test_item_with_a_bad_signature_is_refused(a: Acct) -> None:
    good = a.item("a", 1)
    before = a.snapshot()
    for bad in (
        replace(good, signature=bytes(64)),
        replace(good, ciphertext=good.ciphertext[:-1] + b"\x00"),
        replace(good, proof=good.proof[:2] + b"\x00\x02"),
        _signed_by(a, good, SigningKey.generate()),
    ):
        with pytest.raises(InvalidSignature):
            a.put([bad])
        assert a.snapshot() == before
    a.put([good])


def test_item_naming_another_writer_is_refused(a: Acct) -> None:
    phone, plan = a.device_entry("phone")
    a.apply(plan)
    by_admin = a.item("a", 1)
    before = a.snapshot()
    with pytest.raises(Forbidden, match="writer"):  # the phone sends what the admin signed
        a.put([by_admin], writer=phone)
    with pytest.raises(Forbidden, match="writer"):  # a device the chain does not know
        a.put([a.item("a", 1, writer=DeviceKeys.generate())])
    assert a.snapshot() == before
    a.put([a.item("a", 1, writer=phone)], writer=phone)


def test_member_cannot_write_admin_only_collections(a: Acct) -> None:
    phone, plan = a.device_entry("phone", scopes=["notes", "_admin"])
    a.apply(plan)
    before = a.snapshot()
    with pytest.raises(Forbidden, match="admin"):
        a.put([a.item("secrets", 2, collection="_admin", writer=phone)], "_admin", phone)
    assert a.snapshot() == before


def test_removed_device_cannot_write(a: Acct) -> None:
    phone, plan = a.device_entry("phone")
    a.apply(plan)
    item = a.item("a", 1, writer=phone)
    plan = a.plan()
    plan.add("device-removed", {"id": phone.device_id})
    a.apply(plan)
    with pytest.raises(Forbidden):
        a.put([item], writer=phone)


def test_items_only_in_items_collections(a: Acct) -> None:
    with pytest.raises(NotFound):
        a.put([a.item("a", 1)], collection="nope")


# ------------------------------------------------------------------------------- grants
def test_put_grants_refuses_a_bad_kfrag_and_changes_nothing(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.apply(plan)
    good = a.grants(keys, ["notes"])[0]
    other = PRESecretKey.generate()
    notes, ssh = a.secrets.epoch_secret("notes", 1), a.secrets.epoch_secret("ssh", 1)
    assert notes is not None and ssh is not None
    bad = {
        "wrong signer": make_kfrag(notes, keys.pre.public_key, other),
        "wrong receiver": make_kfrag(notes, other.public_key, a.secrets.kfrag_signer),
        "wrong collection": make_kfrag(ssh, keys.pre.public_key, a.secrets.kfrag_signer),
        "garbage": good.kfrag[:-1] + bytes([good.kfrag[-1] ^ 1]),
    }
    before = a.snapshot()
    for kfrag in bad.values():
        with pytest.raises(VerificationError):
            a.store.put_grants(a.name, [good, replace(good, key="notes", kfrag=kfrag)], NOW)
        assert a.snapshot() == before
    a.store.put_grants(a.name, [good], NOW)
    assert len(a.store.grants(a.name, "notes")) == 2


def test_grants_for_devices_that_are_not_live_or_unknown_collections(a: Acct) -> None:
    keys = DeviceKeys.generate()
    with pytest.raises(VerificationError):
        a.store.put_grants(a.name, a.grants(keys, ["notes"]), NOW)
    g = a.grants(a.admin, ["notes"])[0]
    with pytest.raises(VerificationError):
        a.store.put_grants(a.name, [replace(g, key="nope")], NOW)
    with pytest.raises(VerificationError):  # device grants: only on the newest epoch
        a.store.put_grants(a.name, [replace(g, epoch=2)], NOW)
    with pytest.raises(VerificationError):  # items collections: to devices only
        a.store.put_grants(a.name, [replace(g, target_kind="account", target=a.name)], NOW)


def test_device_grants_on_an_older_epoch_are_pruned(a: Acct) -> None:
    phone, plan = a.device_entry("phone")
    [on_epoch_1] = a.grants(phone, ["notes"], plan)
    a.apply(plan)
    assert on_epoch_1.epoch == 1
    _new_epoch(a)  # grants the admin only
    notes = {(g.epoch, g.target) for g in a.store.grants(a.name, "notes")}
    assert notes == {(2, a.admin.device_id)}
    with pytest.raises(VerificationError):  # and the old epoch cannot be granted again
        a.store.put_grants(a.name, [on_epoch_1], NOW)


def test_removing_a_device_deletes_its_grants_and_reencryption_stops(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.grants(keys, ["notes"], plan)
    a.apply(plan)
    epoch, capsule = current_capsule(a)
    [(cfrag, gen)] = a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "", NOW)
    assert cfrag and gen == 0
    ssh_epoch, ssh_capsule = current_capsule(a, "ssh")
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("ssh", ssh_epoch, ssh_capsule)], auth(a, keys), "", NOW)
    plan = a.plan()
    plan.add("device-removed", {"id": keys.device_id})
    a.apply(plan)
    assert not auth(a, keys).live
    assert [g.target for g in a.store.grants(a.name)].count(keys.device_id) == 0
    with pytest.raises(DeviceRemoved):
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "", NOW)


def test_expired_grant_is_refused_and_audited(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.apply(plan)
    a.store.put_grants(
        a.name, [replace(g, expires=NOW + 10) for g in a.grants(keys, ["notes"])], NOW
    )
    epoch, capsule = current_capsule(a)
    a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "ctx", NOW)
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "ctx", NOW + 10)
    records = a.store.audit(a.name)
    assert [(r.allowed, r.reason) for r in records] == [(True, ""), (False, "grant expired")]


def test_removed_device_is_refused_and_audited(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.grants(keys, ["notes"], plan)
    a.apply(plan)
    epoch, capsule = current_capsule(a)
    plan = a.plan()
    plan.add("device-removed", {"id": keys.device_id})
    a.apply(plan)
    with pytest.raises(DeviceRemoved):
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "ctx", NOW)
    with pytest.raises(DeviceRemoved):  # refused without a context too, just not audited
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "", NOW)
    records = a.store.audit(a.name)
    assert [(r.grantee_device, r.allowed, r.reason) for r in records] == [
        (keys.device_id, False, "device removed")
    ]
