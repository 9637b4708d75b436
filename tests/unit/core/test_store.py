"""The service's storage, on SQLite and PostgreSQL alike: refusals never change stored data."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest
from keystead.core import account as acct
from keystead.core._encoding import b64d
from keystead.core._umbral import PRESecretKey, make_kfrag
from keystead.core.chain import SignedEntry, make_entry, sign_device_statement
from keystead.core.crypto import SigningKey
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
from keystead.core.items import SealedItem
from keystead.core.keys import AccountSecrets, DeviceKeys
from keystead.core.service import Store
from keystead.core.service.store import PAIRING_MAX_FAILURES, PAIRING_TTL, AuthDevice, Grant
from keystead.core.service.store_data import SPOOL_MAX_BODY

NOW = 1_700_000_000


@dataclass
class Acct:
    """An account written straight into a store: its secrets and how to extend its chain."""

    store: Store
    name: str
    secrets: AccountSecrets
    admin: DeviceKeys

    def chainer(self) -> acct._Chainer:
        state = self.store.chain_state(self.name)
        return acct._Chainer(self.secrets, self.name, state.seq, state.head, lambda: NOW)

    def device_entry(self, name: str, scopes: list[str] | None = None,
                     keys: DeviceKeys | None = None) -> tuple[DeviceKeys, acct._Chainer]:
        keys = keys or DeviceKeys.generate()
        body = {**keys.public_body(name), "role": "member", "scopes": scopes or ["notes"]}
        ch = self.chainer()
        ch.add("device-added", body, sign_device_statement(keys.signing, self.name, body))
        return keys, ch

    def grants(self, keys: DeviceKeys, scopes: list[str]) -> list[Grant]:
        return [Grant(g["key"], g["target_kind"], g["target"], g["target_generation"],
                      b64d(g["kfrag"]), g["expires"])
                for g in acct._grants(self.secrets, keys.device_id, keys.pre.public_key, scopes)]

    def snapshot(self) -> dict[str, Any]:
        """Everything stored for this account that a refused request must not change."""
        s = self.store
        return {
            "chain": [e.to_json() for e in s.chain(self.name)],
            "devices": {d: s.device(self.name, d) for d in s.chain_state(self.name).devices},
            "grants": s.grants(self.name),
            "items": s.changes(self.name, "notes", 0, 1000),
        }


def make(store: Store) -> Acct:
    name = f"a-{uuid.uuid4().hex[:10]}"
    secrets = AccountSecrets.generate(PRESecretKey.generate().public_key)
    keys = DeviceKeys.generate()
    genesis = make_entry(secrets.account_key, account=name, seq=0, prev="", time=NOW,
                         type="account-created", body={
                             "account_key": acct.b64e(secrets.account_key.verify_key.raw),
                             "kfrag_signer": acct.b64e(secrets.kfrag_signer.public_key.raw),
                             "recovery_key": acct.b64e(secrets.recovery_key.raw),
                             "sharing_key": acct.b64e(secrets.sharing[0].public_key.raw)})
    ch = acct._Chainer(secrets, name, 0, genesis.digest, lambda: NOW)
    ch.collection("notes")
    ch.collection("ssh")
    body = {**keys.public_body("laptop"), "role": "admin", "scopes": ["notes", "ssh"]}
    ch.add("device-added", body, sign_device_statement(keys.signing, name, body))
    store.create_account(name, [genesis, *ch.entries], b"blob", NOW)
    a = Acct(store, name, secrets, keys)
    store.put_grants(name, a.grants(keys, ["notes", "ssh"]), NOW)
    return a


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
    assert dev.live and dev.scopes == ("notes", "ssh") and dev.role == "admin"
    assert a.store.recovery_blob(a.name) == b"blob"


def test_unknown_account(store: Store) -> None:
    for call in (lambda: store.chain("nobody"), lambda: store.chain_state("nobody"),
                 lambda: store.recovery_blob("nobody")):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(Forbidden):
        store.device("nobody", "0" * 16)


def test_existing_account_cannot_be_created_again(a: Acct) -> None:
    before = a.snapshot()
    with pytest.raises(Conflict):
        a.store.create_account(a.name, a.store.chain(a.name), b"other", NOW)
    assert a.snapshot() == before
    assert a.store.recovery_blob(a.name) == b"blob"


def test_create_account_verifies_the_chain(store: Store) -> None:
    other = make(store)
    with pytest.raises(VerificationError):
        store.create_account("fresh-" + uuid.uuid4().hex[:6], store.chain(other.name), b"", NOW)


def _forged(a: Acct, how: str) -> list[SignedEntry]:
    keys, ch = a.device_entry("phone")
    e = ch.entries[-1]
    state = a.store.chain_state(a.name)
    body = json.loads(e.entry)["body"]
    if how == "bad signature":
        return [SignedEntry(e.entry, bytes(64), e.device_signature)]
    if how == "other account key":
        return [make_entry(SigningKey.generate(), account=a.name, seq=state.seq + 1,
                           prev=state.head, time=NOW, type="device-added", body=body,
                           device_signature=e.device_signature)]
    if how == "wrong previous hash":
        return [make_entry(a.secrets.account_key, account=a.name, seq=state.seq + 1,
                           prev=state.digests[0], time=NOW, type="device-added", body=body,
                           device_signature=e.device_signature)]
    if how == "reused sequence number":
        return [make_entry(a.secrets.account_key, account=a.name, seq=state.seq,
                           prev=state.digests[-2], time=NOW, type="device-added", body=body,
                           device_signature=e.device_signature)]
    if how == "no countersignature":
        return [SignedEntry(e.entry, e.signature, None)]
    if how == "second entry bad":  # a valid entry followed by a bad one: all-or-nothing
        ch.add("device-removed", {"id": "0" * 16})
        return ch.entries
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["bad signature", "other account key", "wrong previous hash",
                                 "reused sequence number", "no countersignature",
                                 "second entry bad"])
def test_bad_appends_are_refused_and_change_nothing(a: Acct, how: str) -> None:
    before = a.snapshot()
    with pytest.raises(VerificationError):
        a.store.append(a.name, _forged(a, how))
    assert a.snapshot() == before
    # and the store still accepts a good append afterwards (its cache was not poisoned)
    _, ch = a.device_entry("phone")
    assert a.store.append(a.name, ch.entries).seq == len(before["chain"])


def test_empty_append_is_refused(a: Acct) -> None:
    with pytest.raises(FormatError):
        a.store.append(a.name, [])


def test_append_seen_by_a_second_store_on_the_same_database(a: Acct) -> None:
    other = Store(a.store.engine)
    other.chain_state(a.name)  # warm its cache
    keys, ch = a.device_entry("phone")
    a.store.append(a.name, ch.entries)
    assert keys.device_id in other.chain_state(a.name).devices
    _, stale = a.device_entry("tablet")
    _, ch2 = a.device_entry("watch")
    a.store.append(a.name, ch2.entries)
    with pytest.raises(VerificationError):  # built on an older head
        other.append(a.name, stale.entries)


# -------------------------------------------------------------------------------- items
def item(item_id: str, version: int, ct: bytes = b"x" * 40) -> SealedItem:
    return SealedItem(item_id, version, 1, ct)


def test_items_versions_and_changes(a: Acct) -> None:
    s = a.store
    assert s.put_items(a.name, "notes", [item("a", 1), item("b", 1)]) == [1, 2]
    assert s.put_items(a.name, "notes", [item("a", 2, b"y" * 40)]) == [3]
    changes = s.changes(a.name, "notes", 0, 100)
    assert [(i.id, i.version, i.seq) for i in changes] == [("b", 1, 2), ("a", 2, 3)]
    assert [i.id for i in s.changes(a.name, "notes", 2, 100)] == ["a"]
    assert s.changes(a.name, "ssh", 0, 100) == []


@pytest.mark.parametrize("stale", [[item("a", 2)], [item("a", 1)], [item("a", 4)],
                                   [item("new", 1), item("a", 2)], [item("new", 2)]])
def test_stale_write_is_a_conflict_and_changes_nothing(a: Acct,
                                                        stale: list[SealedItem]) -> None:
    a.store.put_items(a.name, "notes", [item("a", 1), item("a", 2)][:1])
    a.store.put_items(a.name, "notes", [item("a", 2, b"v2" * 20)])
    before = a.snapshot()
    with pytest.raises(Conflict):
        a.store.put_items(a.name, "notes", stale)
    assert a.snapshot() == before
    assert a.store.put_items(a.name, "notes", [item("z", 1)]) == [3]  # seq not consumed


def test_same_item_twice_in_one_write_is_refused(a: Acct) -> None:
    with pytest.raises(FormatError):
        a.store.put_items(a.name, "notes", [item("a", 1), item("a", 2)])
    assert a.snapshot()["items"] == []


# ------------------------------------------------------------------------------- grants
def test_put_grants_refuses_a_bad_kfrag_and_changes_nothing(a: Acct) -> None:
    keys, ch = a.device_entry("phone")
    a.store.append(a.name, ch.entries)
    good = a.grants(keys, ["notes"])[0]
    other = PRESecretKey.generate()
    bad = {
        "wrong signer": make_kfrag(a.secrets.collections["notes"], keys.pre.public_key, other),
        "wrong receiver": make_kfrag(a.secrets.collections["notes"], other.public_key,
                                     a.secrets.kfrag_signer),
        "wrong collection": make_kfrag(a.secrets.collections["ssh"], keys.pre.public_key,
                                       a.secrets.kfrag_signer),
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
    with pytest.raises(FormatError):
        a.store.put_grants(a.name, [replace(g, target_kind="group")], NOW)


def test_removing_a_device_deletes_its_grants_and_reencryption_stops(a: Acct) -> None:
    keys, ch = a.device_entry("phone")
    a.store.append(a.name, ch.entries)
    a.store.put_grants(a.name, a.grants(keys, ["notes"]), NOW)
    capsule = a.store.chain_state(a.name).collection("notes").epochs[1][0]
    assert a.store.reencrypt(a.name, [("notes", capsule)], auth(a, keys), "", NOW)
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("ssh", capsule)], auth(a, keys), "", NOW)
    ch = a.chainer()
    ch.add("device-removed", {"id": keys.device_id})
    a.store.append(a.name, ch.entries)
    assert not auth(a, keys).live
    assert [g.target for g in a.store.grants(a.name)].count(keys.device_id) == 0


def test_expired_grant_is_refused_and_audited(a: Acct) -> None:
    keys, ch = a.device_entry("phone")
    a.store.append(a.name, ch.entries)
    a.store.put_grants(a.name, [replace(g, expires=NOW + 10)
                                for g in a.grants(keys, ["notes"])], NOW)
    capsule = a.store.chain_state(a.name).collection("notes").epochs[1][0]
    a.store.reencrypt(a.name, [("notes", capsule)], auth(a, keys), "ctx", NOW)
    with pytest.raises(Forbidden):
        a.store.reencrypt(a.name, [("notes", capsule)], auth(a, keys), "ctx", NOW + 10)
    records = a.store.audit(a.name)
    assert [(r.allowed, r.reason) for r in records] == [(True, ""), (False, "grant expired")]



def test_removed_device_is_refused_and_audited(a: Acct) -> None:
    keys, ch = a.device_entry("phone")
    a.store.append(a.name, ch.entries)
    a.store.put_grants(a.name, a.grants(keys, ["notes"]), NOW)
    capsule = a.store.chain_state(a.name).collection("notes").epochs[1][0]
    ch = a.chainer()
    ch.add("device-removed", {"id": keys.device_id})
    a.store.append(a.name, ch.entries)
    with pytest.raises(DeviceRemoved):
        a.store.reencrypt(a.name, [("notes", capsule)], auth(a, keys), "ctx", NOW)
    with pytest.raises(DeviceRemoved):  # refused without a context too, just not audited
        a.store.reencrypt(a.name, [("notes", capsule)], auth(a, keys), "", NOW)
    records = a.store.audit(a.name)
    assert [(r.grantee_device, r.allowed, r.reason) for r in records] == [
        (keys.device_id, False, "device removed")]

# ------------------------------------------------------------------------------- nonces
def test_replayed_nonce_is_refused(a: Acct) -> None:
    a.store.use_nonce("x/dev", "n1", NOW, 120)
    a.store.use_nonce("x/dev", "n2", NOW, 120)
    a.store.use_nonce("x/other", "n1", NOW, 120)
    with pytest.raises(Forbidden):
        a.store.use_nonce("x/dev", "n1", NOW + 5, 120)


# ------------------------------------------------------------------------------ pairing
def _pairing(a: Acct, name: str = "phone") -> tuple[DeviceKeys, str, str]:
    keys = DeviceKeys.generate()
    body = keys.public_body(name)
    request = json.dumps({"device": body, "statement_sig": acct.b64e(
        sign_device_statement(keys.signing, a.name, body))}).encode()
    code, token = a.store.create_pairing(a.name, request, NOW)
    return keys, code, token


def _approve(a: Acct, keys: DeviceKeys, code: str, now: int = NOW,
             grants: list[Grant] | None = None) -> None:
    _, ch = a.device_entry("phone", keys=keys)
    a.store.approve_pairing(a.name, code, keys.device_id, ch.entries,
                            a.grants(keys, ["notes"]) if grants is None else grants, now)


def test_pairing_flow(a: Acct) -> None:
    keys, code, token = _pairing(a)
    assert len(code) == 11 and code[5] == "-"
    assert json.loads(a.store.pairing_request(a.name, code.lower(), NOW))["device"]["id"] == \
        keys.device_id
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
    _, ch = a.device_entry("phone", keys=other)
    with pytest.raises(VerificationError):
        store.approve_pairing(a.name, code, other.device_id, ch.entries,
                              a.grants(other, ["notes"]), NOW)
    assert a.snapshot() == before
    _approve(a, keys, code)  # the code is still usable by its own device


def test_approval_with_a_bad_grant_changes_nothing_and_keeps_the_code(a: Acct) -> None:
    keys, code, token = _pairing(a)
    bad = [replace(g, kfrag=make_kfrag(a.secrets.collections["notes"], keys.pre.public_key,
                                       PRESecretKey.generate()))
           for g in a.grants(keys, ["notes"])]
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


# ------------------------------------------------------------------------- concurrency
def test_concurrent_editors_lose_no_acknowledged_write(a: Acct, database_url: str) -> None:
    """Three editors, each with its own engine (as separate processes would have), edit one
    item: every write the store acknowledged is in the history, change numbers are unique
    and gap-free, and the final version counts exactly the acknowledged writes."""
    import threading

    from keystead.core.service.db import make_engine

    a.store.put_items(a.name, "notes", [item("shared", 1, b"v1")])
    acked: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def editor(n: int) -> None:
        engine = make_engine(database_url)
        store = Store(engine)
        try:
            for k in range(12):
                while True:
                    cur = [i for i in store.changes(a.name, "notes", 0, 1000)
                           if i.id == "shared"][0]
                    body = f"e{n}-{k}".encode()
                    try:
                        seq = store.put_items(a.name, "notes",
                                              [item("shared", cur.version + 1, body)])[0]
                    except Conflict:
                        continue
                    with lock:
                        acked.append((cur.version + 1, seq, body))
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
    assert s.put_items(a.name, "notes", [item("a", 1)]) == [1]
    assert s.put_items(a.name, "ssh", [item("k", 1)]) == [1]
    assert s.put_items(a.name, "notes", [item("b", 1), item("a", 2)]) == [2, 3]
    assert [i.seq for i in s.changes(a.name, "ssh", 0, 10)] == [1]


def test_rate_counters_are_shared_by_stores_on_one_database(store: Store,
                                                            database_url: str) -> None:
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
    s.config = ServiceConfig(quota_items=2, quota_item_bytes=100, quota_spool_messages=2,
                             quota_spool_bytes=10)
    s.put_items(a.name, "notes", [item("a", 1, b"x" * 40), item("b", 1, b"x" * 40)])
    with pytest.raises(QuotaExceeded) as e:
        s.put_items(a.name, "notes", [item("c", 1, b"x")])
    assert e.value.limit == "quota_items"
    with pytest.raises(QuotaExceeded) as e:
        s.put_items(a.name, "notes", [item("a", 2, b"x" * 61)])
    assert e.value.limit == "quota_item_bytes"
    s.put_items(a.name, "notes", [item("a", 2, b"x" * 60)])  # replacing counts the difference
    s.spool_put(a.name, "inbox", "x", b"12345", NOW)
    with pytest.raises(QuotaExceeded) as e:
        s.spool_put(a.name, "inbox", "x", b"123456", NOW)
    assert e.value.limit == "quota_spool_bytes"
    s.spool_put(a.name, "inbox", "x", b"1", NOW)
    with pytest.raises(QuotaExceeded) as e:
        s.spool_put(a.name, "inbox", "x", b"1", NOW)
    assert e.value.limit == "quota_spool_messages"
    assert len(s.spool_get(a.name, "inbox", 0, 10, NOW)) == 2
