"""The service's storage, on SQLite and PostgreSQL alike: refusals never change stored data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from keystead.core._encoding import b64d, b64e
from keystead.core._umbral import PRESecretKey, make_kfrag
from keystead.core.bundle import Plan
from keystead.core.chain import SignedEntry, make_entry, sign_device_statement, verify_chain
from keystead.core.crypto import SigningKey
from keystead.core.epochs import data_key
from keystead.core.errors import (
    Conflict,
    DeviceRemoved,
    Forbidden,
    FormatError,
    InvalidSignature,
    NotFound,
    RateLimited,
    VerificationError,
)
from keystead.core.items import ItemVerifier, SealedItem, seal_item, sign_items
from keystead.core.keys import AccountSecrets, DeviceKeys
from keystead.core.service import Store
from keystead.core.service.store import (
    PAIRING_MAX_FAILURES,
    PAIRING_TTL,
    AuthDevice,
    Bundle,
    Grant,
)
from keystead.core.service.store_data import SPOOL_MAX_BODY

NOW = 1_700_000_000
COLLECTIONS = ("notes", "ssh", "_admin")


def to_grants(raw: Sequence[dict[str, Any]]) -> list[Grant]:
    return [
        Grant(
            g["key"],
            g["epoch"],
            g["target_kind"],
            g["target"],
            g["target_generation"],
            b64d(g["kfrag"]),
            g["expires"],
        )
        for g in raw
    ]


def to_bundle(plan: Plan, *, blob: bool = True) -> Bundle:
    """What the service's route makes of ``plan.to_json()`` (items signed per writer)."""
    wire = plan.to_json(with_recovery=blob)
    items = [
        (i["collection"], SealedItem.from_json({k: v for k, v in i.items() if k != "collection"}))
        for i in wire["items"]
    ]
    return Bundle(
        plan.base.seq,
        plan.base.head,
        list(plan.entries),
        to_grants(plan.grants),
        [(d["key"], d["target_kind"], d["target"]) for d in plan.deletes],
        items,
        b64d(wire["recovery_blob"]) if blob else None,
    )


@dataclass
class Acct:
    """An account written straight into a store: its secrets and how to extend its chain."""

    store: Store
    name: str
    secrets: AccountSecrets
    admin: DeviceKeys

    def plan(self) -> Plan:
        """A bundle under construction on the stored head."""
        return Plan(self.secrets, self.store.chain_state(self.name), lambda: NOW)

    def device_entry(
        self,
        name: str,
        scopes: list[str] | None = None,
        keys: DeviceKeys | None = None,
        role: str = "member",
    ) -> tuple[DeviceKeys, Plan]:
        keys = keys or DeviceKeys.generate()
        body = {**keys.public_body(name), "role": role, "scopes": scopes or ["notes"]}
        plan = self.plan()
        plan.add("device-added", body, sign_device_statement(keys.signing, self.name, body))
        return keys, plan

    def grants(self, keys: DeviceKeys, scopes: list[str], plan: Plan | None = None) -> list[Grant]:
        """Device grants on the newest epoch of each of ``scopes``."""
        plan = plan or self.plan()
        first = len(plan.grants)
        for scope in scopes:
            plan.grant_device(scope, keys.device_id, keys.pre.public_key)
        return to_grants(plan.grants[first:])

    def apply(self, plan: Plan, writer: DeviceKeys | None = None) -> Any:
        return self.store.apply_bundle(
            self.name, to_bundle(plan), (writer or self.admin).device_id, NOW
        )

    def item(
        self,
        item_id: str,
        version: int,
        plaintext: bytes = b"x",
        *,
        collection: str = "notes",
        epoch: int | None = None,
        writer: DeviceKeys | None = None,
    ) -> SealedItem:
        """An item sealed under ``epoch`` (default: the current one), signed by ``writer``."""
        coll = self.store.chain_state(self.name).collection(collection)
        number = coll.current_epoch if epoch is None else epoch
        secret = self.secrets.epoch_secret(collection, number)
        assert secret is not None
        writer = writer or self.admin
        item = seal_item(
            data_key(secret, coll.epoch(number)),
            account=self.name,
            collection=collection,
            item_id=item_id,
            version=version,
            epoch=number,
            plaintext=plaintext,
            writer=writer.device_id,
        )
        return sign_items(writer.signing, account=self.name, collection=collection, items=[item])[0]

    def put(
        self, items: list[SealedItem], collection: str = "notes", writer: DeviceKeys | None = None
    ) -> list[int]:
        return self.store.put_items(self.name, collection, items, (writer or self.admin).device_id)

    def snapshot(self) -> dict[str, Any]:
        """Everything stored for this account that a refused request must not change."""
        s = self.store
        return {
            "chain": [e.to_json() for e in s.chain(self.name)],
            "devices": {d: s.device(self.name, d) for d in s.chain_state(self.name).devices},
            "grants": s.grants(self.name),
            "items": {c: s.changes(self.name, c, 0, 1000) for c in COLLECTIONS},
            "recovery": s.recovery_blob(self.name),
        }


def make(store: Store) -> Acct:
    """An account created with one bundle: two collections, an admin, its grants, one item."""
    name = f"a-{uuid.uuid4().hex[:10]}"
    secrets = AccountSecrets.generate(PRESecretKey.generate().public_key)
    keys = DeviceKeys.generate()
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
    plan = Plan(secrets, verify_chain([genesis], account=name), lambda: NOW)
    for coll in COLLECTIONS:
        plan.collection(coll, "items")
    body = {**keys.public_body("laptop"), "role": "admin", "scopes": sorted(COLLECTIONS)}
    plan.add("device-added", body, sign_device_statement(keys.signing, name, body))
    for coll in COLLECTIONS:
        plan.grant_device(coll, keys.device_id, keys.pre.public_key)
    plan.put_item("_admin", "secrets", secrets.to_bytes(), 1, keys.device_id, keys.signing)
    bundle = to_bundle(plan)
    store.create_account(name, replace(bundle, entries=[genesis, *bundle.entries]), NOW)
    return Acct(store, name, secrets, keys)


@pytest.fixture
def a(store: Store) -> Acct:
    return make(store)


def auth(a: Acct, keys: DeviceKeys) -> AuthDevice:
    return a.store.device(a.name, keys.device_id)


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


def _capsule(a: Acct, coll: str = "notes") -> tuple[int, bytes]:
    info = a.store.chain_state(a.name).collection(coll).current
    assert info.capsule is not None
    return info.epoch, info.capsule


def test_removing_a_device_deletes_its_grants_and_reencryption_stops(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.grants(keys, ["notes"], plan)
    a.apply(plan)
    epoch, capsule = _capsule(a)
    [(cfrag, gen)] = a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "", NOW)
    assert cfrag and gen == 0
    ssh_epoch, ssh_capsule = _capsule(a, "ssh")
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
    epoch, capsule = _capsule(a)
    a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "ctx", NOW)
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "ctx", NOW + 10)
    records = a.store.audit(a.name)
    assert [(r.allowed, r.reason) for r in records] == [(True, ""), (False, "grant expired")]


def test_removed_device_is_refused_and_audited(a: Acct) -> None:
    keys, plan = a.device_entry("phone")
    a.grants(keys, ["notes"], plan)
    a.apply(plan)
    epoch, capsule = _capsule(a)
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


# ------------------------------------------------------------------------------- nonces
def test_replayed_nonce_is_refused(a: Acct) -> None:
    a.store.use_nonce("x/dev", "n1", NOW, 120)
    a.store.use_nonce("x/dev", "n2", NOW, 120)
    a.store.use_nonce("x/other", "n1", NOW, 120)
    with pytest.raises(Forbidden):
        a.store.use_nonce("x/dev", "n1", NOW + 5, 120)


def test_nonces_committed_together_still_refuse_every_replay(a: Acct) -> None:
    """Nonces are group-committed: many threads on two stores (two processes' worth) on one
    database, each nonce sent by several of them at once: exactly one use of each nonce is
    accepted, whichever batch or store it went through; the others are refused as replays,
    and every accepted one is in the database."""
    import threading

    stores = [a.store, Store(a.store.engine)]
    nonces = [f"c{i}" for i in range(40)]
    outcomes: list[tuple[str, bool]] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(k: int) -> None:
        start.wait()
        for n in nonces:
            try:
                stores[k % 2].use_nonce("x/dev", n, NOW, 120)
                ok = True
            except Forbidden as e:
                assert "replay" in str(e)
                ok = False
            with lock:
                outcomes.append((n, ok))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 16 * len(nonces)
    assert sorted(n for n, ok in outcomes if ok) == sorted(nonces)
    for n in nonces:  # committed: a later use, by either store, is a replay
        with pytest.raises(Forbidden):
            stores[1].use_nonce("x/dev", n, NOW + 1, 120)


# ------------------------------------------------------------------------------ pairing
def _pairing(a: Acct, name: str = "phone") -> tuple[DeviceKeys, str, str]:
    keys = DeviceKeys.generate()
    body = keys.public_body(name)
    request = json.dumps(
        {"device": body, "statement_sig": b64e(sign_device_statement(keys.signing, a.name, body))}
    ).encode()
    code, token = a.store.create_pairing(a.name, request, NOW)
    return keys, code, token


def _approve(
    a: Acct, keys: DeviceKeys, code: str, now: int = NOW, grants: list[Grant] | None = None
) -> None:
    _, plan = a.device_entry("phone", keys=keys)
    a.store.approve_pairing(
        a.name,
        code,
        keys.device_id,
        plan.entries,
        a.grants(keys, ["notes"]) if grants is None else grants,
        now,
    )


def test_pairing_flow(a: Acct) -> None:
    keys, code, token = _pairing(a)
    assert len(code) == 11 and code[5] == "-"
    assert (
        json.loads(a.store.pairing_request(a.name, code.lower(), NOW))["device"]["id"]
        == keys.device_id
    )
    assert a.store.pairing_status(code, token, NOW) == "pending"
    with pytest.raises(NotFound):
        a.store.pairing_status(code, "wrong token", NOW)
    _approve(a, keys, code)
    assert a.store.pairing_status(code, token, NOW) == "approved"
    assert auth(a, keys).live


def test_used_pairing_code_is_refused(a: Acct) -> None:
    keys, code, _ = _pairing(a)
    _approve(a, keys, code)
    before = a.snapshot()
    with pytest.raises(NotFound):
        a.store.pairing_request(a.name, code, NOW)
    with pytest.raises((NotFound, VerificationError)):
        _approve(a, keys, code)
    assert a.snapshot() == before


def test_expired_pairing_code_is_refused(a: Acct) -> None:
    keys, code, token = _pairing(a)
    later = NOW + PAIRING_TTL + 1
    assert a.store.pairing_status(code, token, later) == "expired"
    before = a.snapshot()
    with pytest.raises(NotFound):
        a.store.pairing_request(a.name, code, later)
    with pytest.raises(NotFound):
        _approve(a, keys, code, now=later)
    assert a.snapshot() == before


def test_code_of_another_account_or_for_another_device_is_refused(store: Store) -> None:
    a, b = make(store), make(store)
    keys, code, _ = _pairing(a)
    with pytest.raises(NotFound):
        store.pairing_request(b.name, code, NOW)
    before = a.snapshot()
    other = DeviceKeys.generate()
    _, plan = a.device_entry("phone", keys=other)
    with pytest.raises(VerificationError):
        store.approve_pairing(
            a.name, code, other.device_id, plan.entries, a.grants(other, ["notes"]), NOW
        )
    assert a.snapshot() == before
    _approve(a, keys, code)  # the code is still usable by its own device


def test_approval_with_a_bad_grant_changes_nothing_and_keeps_the_code(a: Acct) -> None:
    keys, code, token = _pairing(a)
    notes = a.secrets.epoch_secret("notes", 1)
    assert notes is not None
    bad = [
        replace(g, kfrag=make_kfrag(notes, keys.pre.public_key, PRESecretKey.generate()))
        for g in a.grants(keys, ["notes"])
    ]
    before = a.snapshot()
    with pytest.raises(VerificationError):
        _approve(a, keys, code, grants=bad)
    assert a.snapshot() == before
    assert a.store.pairing_status(code, token, NOW) == "pending"
    _approve(a, keys, code)
    assert auth(a, keys).live


def test_guessing_pairing_codes_is_rate_limited(a: Acct) -> None:
    keys, code, _ = _pairing(a)
    for i in range(PAIRING_MAX_FAILURES):
        with pytest.raises(NotFound):
            a.store.pairing_request(a.name, f"AAAAA-{i:05d}", NOW)
    with pytest.raises(RateLimited):
        a.store.pairing_request(a.name, code, NOW)  # even the right code, for a while
    assert a.store.pairing_request(a.name, code, NOW + PAIRING_TTL - 1 + 1)  # window over


def test_rate_limit_is_per_account(store: Store) -> None:
    a, b = make(store), make(store)
    for _ in range(PAIRING_MAX_FAILURES):
        with pytest.raises(NotFound):
            store.pairing_request(a.name, "AAAAA-AAAAA", NOW)
    _, code, _ = _pairing(b)
    assert store.pairing_request(b.name, code, NOW)


def test_pairing_for_unknown_account(store: Store) -> None:
    with pytest.raises(NotFound):
        store.create_pairing("nobody", b"{}", NOW)


# ------------------------------------------------------------------------ spool, records
def test_spool_and_records(a: Acct) -> None:
    s = a.store
    m1 = s.spool_put(a.name, "messages", "b/dev", b"hi", NOW)
    s.spool_put(a.name, "messages", "b/dev", b"old", NOW, expires=NOW)
    assert [m.body for m in s.spool_get(a.name, "messages", 0, 10, NOW)] == [b"hi"]
    assert s.spool_delete(a.name, "messages", m1) and not s.spool_delete(a.name, "messages", m1)
    s.record_put(a.name, "ns", "k", b"v", NOW, create_only=True)
    with pytest.raises(Conflict):
        s.record_put(a.name, "ns", "k", b"w", NOW, create_only=True)
    assert s.record_get(a.name, "ns", "k") == b"v"
    assert s.record_list(a.name, "ns") == [("k", b"v")]
    assert s.record_delete(a.name, "ns", "k") and s.record_get(a.name, "ns", "k") is None


def test_invalid_signature_type_is_a_verification_error() -> None:
    assert issubclass(InvalidSignature, VerificationError)


def test_spool_put_many_is_all_or_nothing(a: Acct) -> None:
    """A delivery naming one unknown account stores nothing for the others either."""
    s = a.store
    with pytest.raises(NotFound):
        s.spool_put_many("messages", "b/dev", [(a.name, b"one"), ("nobody-here", b"two")], NOW)
    assert s.spool_get(a.name, "messages", 0, 10, NOW) == []
    ids = s.spool_put_many("messages", "b/dev", [(a.name, b"one"), (a.name, b"two")], NOW)
    assert [m.id for m in s.spool_get(a.name, "messages", 0, 10, NOW)] == ids


def test_a_spooled_body_over_1_mib_is_refused_and_nothing_stored(a: Acct) -> None:
    s = a.store
    big = b"x" * (SPOOL_MAX_BODY + 1)
    with pytest.raises(FormatError, match="1 MiB"):
        s.spool_put_many("messages", "b/dev", [(a.name, b"fine"), (a.name, big)], NOW)
    with pytest.raises(FormatError, match="1 MiB"):
        s.spool_put(a.name, "messages", "b/dev", big, NOW)
    assert s.spool_get(a.name, "messages", 0, 10, NOW) == []
    s.spool_put(a.name, "messages", "b/dev", big[:-1], NOW)  # exactly 1 MiB is fine


# ------------------------------------------------------------------------------ audit
def test_refusals_without_a_grant_are_counted_not_logged_one_by_one(a: Acct) -> None:
    import hashlib

    keys, plan = a.device_entry("phone")
    a.apply(plan)
    epoch, capsule = _capsule(a)
    for i in range(50):  # no grant: one row, counted (the context it names is not kept)
        with pytest.raises(Forbidden):
            a.store.reencrypt(
                a.name, [("notes", epoch, capsule)], auth(a, keys), f"ctx{i}", NOW + i
            )
    a.store.put_grants(a.name, a.grants(keys, ["notes"]), NOW)
    a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "doc", NOW + 60)
    records = a.store.audit(a.name)
    assert [(r.allowed, r.reason, r.count, r.context) for r in records] == [
        (False, "no grant", 50, ""),
        (True, "", 1, "doc"),
    ]
    assert records[1].capsule == hashlib.sha256(capsule).hexdigest()
    # an hour later, a new counted row
    assert a.store.delete_grant(a.name, "notes", "device", keys.device_id)
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("notes", epoch, capsule)], auth(a, keys), "x", NOW + 3700)
    # pages and filters
    page = a.store.audit(a.name, limit=1)
    assert [r.id for r in page] == [records[0].id]
    assert [r.id for r in a.store.audit(a.name, after=records[0].id, limit=1)] == [records[1].id]
    assert [r.reason for r in a.store.audit(a.name, allowed=True)] == [""]
    assert len(a.store.audit(a.name, allowed=False)) == 2


# ------------------------------------------------------------------------- concurrency
def test_concurrent_editors_lose_no_acknowledged_write(a: Acct, database_url: str) -> None:
    """Three editors, each with its own engine (as separate processes would have), edit one
    item: every write the store acknowledged is in the history, change numbers are unique
    and gap-free, and the final version counts exactly the acknowledged writes."""
    import threading

    from keystead.core.service.db import make_engine

    a.put([a.item("shared", 1, b"v1")])
    acked: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def editor(n: int) -> None:
        engine = make_engine(database_url)
        store = Store(engine)
        mine = replace(a, store=store)
        try:
            for k in range(12):
                while True:
                    cur = [i for i in store.changes(a.name, "notes", 0, 1000) if i.id == "shared"][
                        0
                    ]
                    new = mine.item("shared", cur.version + 1, f"e{n}-{k}".encode())
                    try:
                        seq = mine.put([new])[0]
                    except Conflict:
                        continue
                    with lock:
                        acked.append((cur.version + 1, seq, new.ciphertext))
                    break
        except BaseException as e:  # surfaced below, with the thread's traceback
            errors.append(e)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    final = [i for i in a.store.changes(a.name, "notes", 0, 1000) if i.id == "shared"][0]
    assert final.version == 1 + len(acked) == 37
    assert sorted(v for v, _, _ in acked) == list(range(2, 38))  # each version acked once
    assert sorted(s for _, s, _ in acked) == list(range(2, 38))  # seq 1 was the first write
    newest = max(acked)
    assert final.ciphertext == newest[2] and final.seq == newest[1]


def test_change_numbers_are_per_collection_and_gap_free(a: Acct) -> None:
    s = a.store
    assert a.put([a.item("a", 1)]) == [1]
    assert a.put([a.item("k", 1, collection="ssh")], "ssh") == [1]
    assert a.put([a.item("b", 1), a.item("a", 2)]) == [2, 3]
    assert [i.seq for i in s.changes(a.name, "ssh", 0, 10)] == [1]
    assert [i.seq for i in s.changes(a.name, "_admin", 0, 10)] == [1]  # the secrets


def test_rate_counters_are_shared_by_stores_on_one_database(
    store: Store, database_url: str
) -> None:
    from keystead.core.service.db import make_engine

    other = Store(make_engine(database_url))
    key = f"test:{uuid.uuid4().hex}"
    store.hit(key, 3, 60, NOW, name="three")
    other.hit(key, 3, 60, NOW, 2, name="three")
    with pytest.raises(RateLimited) as e:
        store.hit(key, 3, 60, NOW + 1, name="three")
    assert e.value.limit == "three" and e.value.retry_after == 60 - (NOW + 1) % 60
    other.hit(key, 3, 60, NOW + 60, 3)  # the next window starts empty
    other.engine.dispose()


def test_item_and_spool_quotas_refuse_with_the_limit_named(a: Acct) -> None:
    from keystead.core.errors import QuotaExceeded
    from keystead.core.service.config import ServiceConfig

    s = a.store
    held = [i for c in COLLECTIONS for i in s.changes(a.name, c, 0, 1000)]  # the secrets
    first = [a.item("a", 1, b"x" * 40), a.item("b", 1, b"x" * 40)]
    overhead = len(first[0].ciphertext) - 40  # what sealing adds to a plaintext
    used = sum(len(i.ciphertext) for i in held) + sum(len(i.ciphertext) for i in first)
    s.config = ServiceConfig(
        quota_items=len(held) + 2,
        quota_item_bytes=used + 20,
        quota_spool_messages=2,
        quota_spool_bytes=10,
    )
    a.put(first)
    with pytest.raises(QuotaExceeded) as e:
        a.put([a.item("c", 1, b"x")])
    assert e.value.limit == "quota_items"
    with pytest.raises(QuotaExceeded) as e:
        a.put([a.item("a", 2, b"x" * 61)])
    assert e.value.limit == "quota_item_bytes"
    assert len(a.item("a", 2, b"x" * 60).ciphertext) == 60 + overhead
    a.put([a.item("a", 2, b"x" * 60)])  # replacing counts the difference
    s.spool_put(a.name, "inbox", "x", b"12345", NOW)
    with pytest.raises(QuotaExceeded) as e:
        s.spool_put(a.name, "inbox", "x", b"123456", NOW)
    assert e.value.limit == "quota_spool_bytes"
    s.spool_put(a.name, "inbox", "x", b"1", NOW)
    with pytest.raises(QuotaExceeded) as e:
        s.spool_put(a.name, "inbox", "x", b"1", NOW)
    assert e.value.limit == "quota_spool_messages"
    assert len(s.spool_get(a.name, "inbox", 0, 10, NOW)) == 2


def test_statements_on_the_driver_cursor_fail_as_sqlalchemy_errors(tmp_path: Path) -> None:
    """The hot reads run on the driver's own cursor; a driver error still comes out as
    SQLAlchemy's (the service answers 503 for those) and the connection leaves the pool."""
    from keystead.core.service.db import Prepared, make_engine
    from keystead.core.service.models import NonceRow
    from sqlalchemy import bindparam, select
    from sqlalchemy.exc import OperationalError

    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")  # no schema: no table
    read = Prepared(select(NonceRow.nonce).where(NonceRow.device == bindparam("d")), engine)
    with pytest.raises(OperationalError, match="no such table"):
        read.all({"d": "x"})
    assert engine.pool.checkedout() == 0
    engine.dispose()
