"""The service's storage of what requests leave behind, on SQLite and PostgreSQL alike: nonces,
pairing codes, spool and records, audit counts, concurrent editors, shared rate counters,
quotas."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from keystead.core._encoding import b64e
from keystead.core._umbral import PRESecretKey, make_kfrag
from keystead.core.chain import sign_device_statement
from keystead.core.errors import (
    Conflict,
    Forbidden,
    FormatError,
    InvalidSignature,
    NotFound,
    RateLimited,
    VerificationError,
)
from keystead.core.keys import DeviceKeys
from keystead.core.service import Store
from keystead.core.service.store import (
    PAIRING_MAX_FAILURES,
    PAIRING_TTL,
    Grant,
)
from keystead.core.service.store_data import SPOOL_MAX_BODY
from store_accounts import COLLECTIONS, NOW, Acct, auth, current_capsule, make


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
    epoch, capsule = current_capsule(a)
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
