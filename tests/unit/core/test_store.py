"""The service's storage, on SQLite and PostgreSQL alike: accounts, chains and bundles;
refusals never change stored data."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
from keystead.core._encoding import b64e
from keystead.core._umbral import PRESecretKey, make_kfrag
from keystead.core.bundle import Plan
from keystead.core.chain import SignedEntry, make_entry, sign_device_statement, verify_chain
from keystead.core.crypto import SigningKey
from keystead.core.errors import (
    Conflict,
    Forbidden,
    FormatError,
    NotFound,
    VerificationError,
)
from keystead.core.keys import AccountSecrets, DeviceKeys
from keystead.core.service import Store
from keystead.core.service.store import (
    Bundle,
    Grant,
)
from store_accounts import COLLECTIONS, NOW, Acct, auth, make, to_bundle, to_grants


# --------------------------------------------------------------------- accounts and chains
def test_account_round_trip(a: Acct) -> None:
    state = a.store.chain_state(a.name)
    assert state.devices[a.admin.device_id].role == "admin"
    entries = a.store.chain(a.name)
    assert [e.digest for e in entries] == list(state.digests)
    assert a.store.chain(a.name, after=state.seq - 1) == entries[-1:]
    dev = auth(a, a.admin)
    assert dev.live and dev.scopes == ("_admin", "notes", "ssh") and dev.role == "admin"
    assert len(a.store.recovery_blob(a.name)) > 105
    assert [i.id for i in a.store.changes(a.name, "_admin", 0, 10)] == ["secrets"]
    assert {(g.key, g.epoch, g.target) for g in a.store.grants(a.name)} == {
        (c, 1, a.admin.device_id) for c in COLLECTIONS
    }


def test_unknown_account(store: Store) -> None:
    for call in (
        lambda: store.chain("nobody"),
        lambda: store.chain_state("nobody"),
        lambda: store.recovery_blob("nobody"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(Forbidden):
        store.device("nobody", "0" * 16)


def test_existing_account_cannot_be_created_again(a: Acct) -> None:
    before = a.snapshot()
    again = Bundle(-1, "", a.store.chain(a.name), [], [], [], b"\x01" * 200)
    with pytest.raises(Conflict):
        a.store.create_account(a.name, again, NOW)
    assert a.snapshot() == before


def test_create_account_verifies_the_chain(store: Store) -> None:
    other = make(store)
    fresh = "fresh-" + uuid.uuid4().hex[:6]
    with pytest.raises(VerificationError):
        store.create_account(
            fresh, Bundle(-1, "", store.chain(other.name), [], [], [], b"\x01" * 200), NOW
        )
    with pytest.raises(NotFound):
        store.chain(fresh)


def test_create_account_is_all_or_nothing(store: Store) -> None:
    """A bad grant in the creation bundle leaves no account behind."""
    other = make(store)
    name = f"a-{uuid.uuid4().hex[:10]}"
    secrets = AccountSecrets.generate(PRESecretKey.generate().public_key)
    genesis = make_entry(
        secrets.account_key,
        account=name,
        seq=0,
        prev="",
        time=NOW,
        type="account-created",
        body={
            "account_key": b64e(secrets.account_key.verify_key.raw),
            "kfrag_signer": b64e(secrets.kfrag_signer.public_key.raw),
            "recovery_key": b64e(secrets.recovery_key.raw),
            "sharing_key": b64e(secrets.sharing[0].public_key.raw),
        },
    )
    keys = DeviceKeys.generate()
    plan = Plan(secrets, verify_chain([genesis], account=name), lambda: NOW)
    plan.collection("notes", "items")
    body = {**keys.public_body("laptop"), "role": "admin", "scopes": ["notes"]}
    plan.add("device-added", body, sign_device_statement(keys.signing, name, body))
    plan.grant_device("notes", keys.device_id, keys.pre.public_key)
    bundle = to_bundle(plan)
    bad_kfrag = to_grants(plan.grants)[0].kfrag[:-1] + b"\x00"
    for bad in (
        replace(bundle, grants=[replace(bundle.grants[0], kfrag=bad_kfrag)]),
        replace(bundle, recovery_blob=b"short"),
    ):
        with pytest.raises((VerificationError, FormatError)):
            store.create_account(name, replace(bad, entries=[genesis, *bad.entries]), NOW)
        with pytest.raises(NotFound):
            store.chain(name)
    store.create_account(name, replace(bundle, entries=[genesis, *bundle.entries]), NOW)
    assert store.chain_state(name).seq == len(bundle.entries)
    assert other.snapshot()["chain"]  # the other account is untouched


def _forged(a: Acct, how: str) -> Plan:
    """A bundle adding a device, with one thing wrong in its chain entries."""
    keys, plan = a.device_entry("phone")
    e = plan.entries[-1]
    state = a.store.chain_state(a.name)
    body = json.loads(e.entry)["body"]
    if how == "bad signature":
        plan.entries[-1] = SignedEntry(e.entry, bytes(64), e.device_signature)
    elif how == "other account key":
        plan.entries[-1] = make_entry(
            SigningKey.generate(),
            account=a.name,
            seq=state.seq + 1,
            prev=state.head,
            time=NOW,
            type="device-added",
            body=body,
            device_signature=e.device_signature,
        )
    elif how == "wrong previous hash":
        plan.entries[-1] = make_entry(
            a.secrets.account_key,
            account=a.name,
            seq=state.seq + 1,
            prev=state.digests[0],
            time=NOW,
            type="device-added",
            body=body,
            device_signature=e.device_signature,
        )
    elif how == "reused sequence number":
        plan.entries[-1] = make_entry(
            a.secrets.account_key,
            account=a.name,
            seq=state.seq,
            prev=state.digests[-2],
            time=NOW,
            type="device-added",
            body=body,
            device_signature=e.device_signature,
        )
    elif how == "no countersignature":
        plan.entries[-1] = SignedEntry(e.entry, e.signature, None)
    elif how == "second entry bad":  # a valid entry followed by a bad one: all-or-nothing
        bad = make_entry(
            a.secrets.account_key,
            account=a.name,
            seq=state.seq + 2,
            prev=e.digest,
            time=NOW,
            type="device-removed",
            body={"id": "0" * 16},
        )
        plan.entries.append(bad)
        a.grants(keys, ["notes"], plan)
    else:
        raise AssertionError(how)
    return plan


@pytest.mark.parametrize(
    "how",
    [
        "bad signature",
        "other account key",
        "wrong previous hash",
        "reused sequence number",
        "no countersignature",
        "second entry bad",
    ],
)
def test_bad_bundles_are_refused_and_change_nothing(a: Acct, how: str) -> None:
    before = a.snapshot()
    with pytest.raises(VerificationError):
        a.apply(_forged(a, how))
    assert a.snapshot() == before
    # and the store still accepts a good bundle afterwards (its cache was not poisoned)
    keys, plan = a.device_entry("phone")
    a.grants(keys, ["notes"], plan)
    assert a.apply(plan).seq == len(before["chain"])
    assert auth(a, keys).live


def test_empty_append_is_refused(a: Acct) -> None:
    with pytest.raises(FormatError):
        a.store.append(a.name, [])


def test_bundle_seen_by_a_second_store_on_the_same_database(a: Acct) -> None:
    other = Store(a.store.engine)
    other.chain_state(a.name)  # warm its cache
    keys, plan = a.device_entry("phone")
    a.apply(plan)
    assert keys.device_id in other.chain_state(a.name).devices
    _, stale = a.device_entry("tablet")
    _, newer = a.device_entry("watch")
    a.apply(newer)
    with pytest.raises(Conflict):  # built on an older head
        other.apply_bundle(a.name, to_bundle(stale), a.admin.device_id, NOW)


# ------------------------------------------------------------------------------ bundles
def _full_bundle(a: Acct, name: str, keys: DeviceKeys | None = None) -> tuple[DeviceKeys, Plan]:
    """A device, its grants, an item and a recovery blob: every part a bundle has."""
    keys, plan = a.device_entry(name, keys=keys)
    a.grants(keys, ["notes"], plan)
    plan.put_item("notes", f"by-{name}", b"hello", 1, a.admin.device_id, a.admin.signing)
    return keys, plan


def test_bundle_on_a_stale_head_is_a_conflict_and_stores_nothing(a: Acct) -> None:
    phone, first = _full_bundle(a, "phone")
    tablet, second = _full_bundle(a, "tablet")  # built on the same head as ``first``
    a.apply(first)
    before = a.snapshot()
    with pytest.raises(Conflict, match="moved on"):
        a.apply(second)
    assert a.snapshot() == before
    assert tablet.device_id not in a.store.chain_state(a.name).devices
    assert not any(g.target == tablet.device_id for g in a.store.grants(a.name))
    assert [i.id for i in a.store.changes(a.name, "notes", 0, 10)] == ["by-phone"]
    # Built again on the new head, it goes through.
    _, again = _full_bundle(a, "tablet", tablet)
    a.apply(again)
    assert auth(a, tablet).live
    assert [i.id for i in a.store.changes(a.name, "notes", 0, 10)] == ["by-phone", "by-tablet"]


def test_resending_an_applied_bundle_succeeds_and_stores_nothing_twice(a: Acct) -> None:
    phone, plan = _full_bundle(a, "phone")
    bundle = to_bundle(plan)
    first = a.store.apply_bundle(a.name, bundle, a.admin.device_id, NOW)
    after = a.snapshot()
    again = a.store.apply_bundle(a.name, bundle, a.admin.device_id, NOW + 5)
    assert (again.seq, again.head) == (first.seq, first.head)
    assert a.snapshot() == after
    assert len(a.store.changes(a.name, "notes", 0, 10)) == 1
    assert [g.target for g in a.store.grants(a.name, "notes")].count(phone.device_id) == 1
    # Even after the chain moved on further, the resend is recognised as applied.
    _, later = a.device_entry("tablet")
    a.apply(later)
    moved = a.snapshot()
    a.store.apply_bundle(a.name, bundle, a.admin.device_id, NOW + 10)
    assert a.snapshot() == moved


def test_bundle_with_one_bad_part_stores_nothing(a: Acct) -> None:
    keys, plan = _full_bundle(a, "phone")
    good = to_bundle(plan)
    other = PRESecretKey.generate()
    secret = a.secrets.epoch_secret("notes", 1)
    assert secret is not None
    bad_kfrag = make_kfrag(secret, keys.pre.public_key, other)
    stranger = DeviceKeys.generate()
    foreign_item = a.item("x", 1, writer=stranger)
    before = a.snapshot()
    for bad in (
        replace(good, grants=[replace(good.grants[0], kfrag=bad_kfrag)]),
        replace(good, items=[*good.items, ("notes", foreign_item)]),
        replace(good, items=[*good.items, ("nope", good.items[0][1])]),
        replace(good, recovery_blob=b"x" * 10),
    ):
        with pytest.raises((VerificationError, Forbidden, FormatError, NotFound)):
            a.store.apply_bundle(a.name, bad, a.admin.device_id, NOW)
        assert a.snapshot() == before
    a.store.apply_bundle(a.name, good, a.admin.device_id, NOW)
    assert auth(a, keys).live


def test_bundle_replaces_the_recovery_blob(a: Acct) -> None:
    before = a.store.recovery_blob(a.name)
    _, plan = a.device_entry("phone")
    a.apply(plan)
    assert a.store.recovery_blob(a.name) not in (before, b"")


def test_key_rotation_drops_every_grant_signed_by_the_old_signer(a: Acct) -> None:
    phone, plan = a.device_entry("phone", scopes=["notes"])
    a.grants(phone, ["notes"], plan)
    a.apply(plan)
    old_signer = a.secrets.kfrag_signer
    plan = a.plan()
    plan.add("device-removed", {"id": phone.device_id})
    plan.rotate_account_key()
    for coll in COLLECTIONS:
        plan.epoch(coll)
        plan.grant_device(coll, a.admin.device_id, a.admin.pre.public_key)
    a.apply(plan)
    state = a.store.chain_state(a.name)
    assert state.key_generation == 1
    assert {(g.key, g.epoch, g.target) for g in a.store.grants(a.name)} == {
        (c, 2, a.admin.device_id) for c in COLLECTIONS
    }
    # A kfrag made with the old signer is no longer accepted.
    secret = a.secrets.epoch_secret("notes", 2)
    assert secret is not None
    stale = Grant(
        "notes",
        2,
        "device",
        a.admin.device_id,
        0,
        make_kfrag(secret, a.admin.pre.public_key, old_signer),
        None,
    )
    with pytest.raises(VerificationError):
        a.store.put_grants(a.name, [stale], NOW)


def test_bundle_items_must_name_the_requesting_device(a: Acct) -> None:
    phone, plan = a.device_entry("phone")
    a.apply(plan)
    _, by_member = _full_bundle(a, "tablet")
    before = a.snapshot()
    with pytest.raises(Forbidden):  # its items name the admin, not the requesting member
        a.store.apply_bundle(a.name, to_bundle(by_member), phone.device_id, NOW)
    assert a.snapshot() == before
