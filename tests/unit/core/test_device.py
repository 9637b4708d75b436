"""The device against a service that lies: rollback, forks, bad cfrags, moved items."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from core_harness import InProcessService
from keystead.core import _umbral
from keystead.core import account as acct
from keystead.core._encoding import b64d, b64e
from keystead.core.chain import SignedEntry, make_entry, verify_chain
from keystead.core.collections import Collection, Unreadable
from keystead.core.device import Device
from keystead.core.errors import (
    DecryptionFailed,
    DeviceRemoved,
    FormatError,
    RollbackDetected,
    VerificationError,
)


def rewrite_json(
    svc: InProcessService, match: Callable[[httpx.Request], bool], edit: Callable[[dict], dict]
) -> None:  # type: ignore[type-arg]
    def rewrite(request: httpx.Request, resp: httpx.Response) -> httpx.Response:
        if not match(request) or resp.status_code != 200:
            return resp
        return httpx.Response(200, json=edit(resp.json()), request=request)

    svc.transport.rewrite = rewrite


def is_chain(request: httpx.Request) -> bool:
    return request.method == "GET" and request.url.path.endswith("/chain")


def assert_unreadable(coll: Collection, item_id: str) -> Unreadable:
    """The item is skipped by every read and named, once, by ``unreadable()``."""
    assert coll.get(item_id, include_deleted=True) is None
    assert item_id not in [r.id for r in coll.records()]
    named = [u for u in coll.unreadable() if u.id == item_id]
    assert len(named) == 1 and named[0].reason
    return named[0]


@pytest.fixture
def alice(svc: InProcessService) -> Device:
    dev, _ = svc.create()
    return dev


def test_chain_refresh_verifies_and_remembers_the_head(
    svc: InProcessService, alice: Device
) -> None:
    state = alice.chain()
    assert alice.keystore.data["seen"] == {"seq": state.seq, "head": state.head}
    assert alice.me().role == "admin"


def test_service_serving_a_shorter_chain_is_detected(svc: InProcessService, alice: Device) -> None:
    svc.join(alice, "phone")
    seen = alice.chain()
    (alice.home.path / "chain.json").unlink()  # the local copy is lost; the pin remains
    rewrite_json(svc, is_chain, lambda d: {"entries": d["entries"][:-1]})
    with pytest.raises(RollbackDetected):
        alice.chain()
    assert alice.keystore.data["seen"]["seq"] == seen.seq


def test_service_serving_nothing_new_keeps_the_cached_chain(
    svc: InProcessService, alice: Device
) -> None:
    seen = alice.chain()
    rewrite_json(svc, is_chain, lambda d: {"entries": []})
    assert alice.chain().head == seen.head


def _branch(alice: Device, seq: int, prev: str, generations: list[int]) -> list[SignedEntry]:
    """Valid, account-signed ``sharing-key`` entries from ``seq`` on, linked to ``prev``."""
    secrets = alice.secrets
    assert secrets is not None
    out: list[SignedEntry] = []
    for gen in generations:
        e = make_entry(
            secrets.account_key,
            account=alice.account,
            seq=seq,
            prev=prev,
            time=int(alice.clock()),
            type="sharing-key",
            body={
                "generation": gen,
                "public_key": b64e(_umbral.PRESecretKey.generate().public_key.raw),
            },
        )
        out.append(e)
        seq, prev = seq + 1, e.digest
    return out


def _fork_entry(alice: Device) -> SignedEntry:
    """A valid entry at the head's sequence number, on a different branch."""
    state = alice.chain()
    [entry] = _branch(alice, state.seq, state.digests[-2], [state.sharing_generation + 1])
    # The same chain with it in place of the head verifies: only the fork gives it away.
    verify_chain(alice.home.read_chain()[:-1] + [entry], account=alice.account)
    return entry


def test_service_serving_a_forked_chain_is_detected(svc: InProcessService, alice: Device) -> None:
    svc.join(alice, "phone")
    fork = _fork_entry(alice)

    def forked(d: dict) -> dict:  # type: ignore[type-arg]
        entries = d["entries"]
        return {"entries": entries[:-1] + [fork.to_json()] if entries else []}

    rewrite_json(svc, is_chain, forked)
    (alice.home.path / "chain.json").unlink()
    with pytest.raises(RollbackDetected):
        alice.chain()


def test_forked_continuation_does_not_link_to_the_cached_chain(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone")
    seen = phone.chain()
    secrets = alice.secrets
    assert secrets is not None
    # a branch that replaces the newest entry phone has seen, then continues from it
    branch = _branch(
        alice,
        seen.seq,
        seen.digests[-2],
        [seen.sharing_generation + 1, seen.sharing_generation + 2],
    )
    rewrite_json(svc, is_chain, lambda d: {"entries": [branch[1].to_json()]})
    with pytest.raises(VerificationError):
        phone.chain()
    assert phone.keystore.data["seen"] == {"seq": seen.seq, "head": seen.head}


def test_device_refuses_a_cfrag_that_fails_verification(
    svc: InProcessService, alice: Device
) -> None:
    Collection(alice, "notes").put("a", b"secret")
    phone = svc.join(alice, "phone", scopes=["notes"])
    [grant] = [g for g in svc.store.grants(alice.account, "notes") if g.target == phone.device_id]
    other_capsule, _ = _umbral.encrypt(alice.chain().collection("notes").public_key, b"x" * 32)
    wrong = _umbral.reencrypt(other_capsule, grant.kfrag)  # genuine, for another capsule

    def swap(d: dict) -> dict:  # type: ignore[type-arg]
        return {"cfrags": [{**c, "cfrag": b64e(wrong)} for c in d["cfrags"]]}

    rewrite_json(svc, lambda r: r.url.path.endswith("/reencrypt"), swap)
    coll = Collection(phone, "notes")
    coll.sync()
    with pytest.raises(VerificationError):
        phone.epoch_keys("notes", [1])
    assert_unreadable(coll, "a")  # readers skip it and name it
    assert "notes:1" not in phone.keystore.data.get("epoch_keys", {})
    svc.transport.rewrite = None
    coll.sync()  # the service stops lying: the item is checked again and reads
    assert coll.get("a").plaintext == b"secret"  # type: ignore[union-attr]
    assert coll.unreadable() == []


def test_wrong_number_of_cfrags_is_refused(svc: InProcessService, alice: Device) -> None:
    Collection(alice, "notes").put("a", b"secret")
    phone = svc.join(alice, "phone", scopes=["notes"])
    rewrite_json(svc, lambda r: r.url.path.endswith("/reencrypt"), lambda d: {"cfrags": []})
    coll = Collection(phone, "notes")
    coll.sync()
    with pytest.raises(FormatError):
        phone.epoch_keys("notes", [1])
    assert_unreadable(coll, "a")


@pytest.mark.parametrize(
    "edit",
    [
        {"id": "b"},
        {"version": 2},
        {"deleted": True},
    ],
)
def test_item_moved_or_relabelled_by_the_service_fails_to_open(
    svc: InProcessService, alice: Device, edit: dict
) -> None:  # type: ignore[type-arg]
    Collection(alice, "notes").put("a", b"secret")
    phone = svc.join(alice, "phone", scopes=["notes"])

    def move(d: dict) -> dict:  # type: ignore[type-arg]
        return {"items": [{**i, **edit} for i in d["items"]]}

    rewrite_json(svc, lambda r: r.url.path.endswith("/items") and r.method == "GET", move)
    coll = Collection(phone, "notes")
    coll.sync()
    if edit.get("deleted"):
        # A made-up deletion hides the item (as withholding it would), but is not trusted
        # as the writer's: there is no tombstone to read.
        assert coll.get("a", include_deleted=True) is None and coll.records() == []
    else:
        assert_unreadable(coll, edit.get("id", "a"))


def test_item_moved_to_another_collection_fails_to_open(
    svc: InProcessService, alice: Device
) -> None:
    Collection(alice, "notes").put("a", b"secret")
    notes = svc.store.changes(alice.account, "notes", 0, 10)
    rewrite_json(
        svc,
        lambda r: r.url.path.endswith("/passwords/items") and r.method == "GET",
        lambda d: {"items": [i.to_json() for i in notes]},
    )
    coll = Collection(alice, "passwords")
    coll.sync()
    assert_unreadable(coll, "a")


def test_older_version_replayed_as_newer_fails_to_open(
    svc: InProcessService, alice: Device
) -> None:
    coll = Collection(alice, "notes")
    coll.put("a", b"old")
    v1 = svc.store.changes(alice.account, "notes", 0, 10)[0]
    coll.put("a", b"new")
    phone = svc.join(alice, "phone", scopes=["notes"])

    def replay(d: dict) -> dict:  # type: ignore[type-arg]
        return {"items": [{**i, "ciphertext": b64e(v1.ciphertext)} for i in d["items"]]}

    rewrite_json(svc, lambda r: r.url.path.endswith("/items") and r.method == "GET", replay)
    pc = Collection(phone, "notes")
    pc.sync()
    assert_unreadable(pc, "a")


def test_removed_device_cannot_read_new_epochs(svc: InProcessService, alice: Device) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(alice, "notes").put("a", b"before")
    pc = Collection(phone, "notes")
    pc.sync()
    assert pc.get("a").plaintext == b"before"  # type: ignore[union-attr]
    acct.remove_device(alice, "phone")
    ac = Collection(alice, "notes")
    ac.put("b", b"after")
    assert alice.chain().collection("notes").current_epoch == 2
    with pytest.raises(DeviceRemoved):
        pc.sync()
    epoch2 = alice.chain().collection("notes").epoch(2)
    assert epoch2.capsule is not None
    with pytest.raises(DeviceRemoved):
        phone.reencrypt(phone.account, [("notes", 2, epoch2.capsule)])
    # Even with every key it kept, the new epoch's data key does not open.
    with pytest.raises(DecryptionFailed):
        _umbral.decrypt(phone.keys.pre, epoch2.capsule, epoch2.ciphertext or b"")


def test_stale_write_is_a_conflict_and_the_stored_item_is_unchanged(
    svc: InProcessService, alice: Device
) -> None:
    from keystead.core.errors import Conflict

    phone = svc.join(alice, "phone", scopes=["notes"])
    ac, pc = Collection(alice, "notes"), Collection(phone, "notes")
    ac.put("a", b"v1")
    pc.sync()
    ac.put("a", b"v2 from laptop")
    stored = svc.store.changes(alice.account, "notes", 0, 10)
    with pytest.raises(Conflict):
        pc.put("a", b"v2 from phone")
    assert svc.store.changes(alice.account, "notes", 0, 10) == stored
    pc.sync()
    assert pc.get("a").plaintext == b"v2 from laptop"  # type: ignore[union-attr]


def test_offline_write_conflict_goes_to_the_resolver(svc: InProcessService, alice: Device) -> None:
    from keystead.core.errors import NetworkError

    phone = svc.join(alice, "phone", scopes=["notes"])
    ac, pc = Collection(alice, "notes"), Collection(phone, "notes")
    ac.put("a", b"v1")
    pc.sync()
    assert pc.get("a").plaintext == b"v1"  # type: ignore[union-attr]
    ac.put("a", b"laptop")

    stored = svc.store.changes(alice.account, "notes", 0, 10)
    svc.transport.down = True
    pc.put("a", b"phone", offline=True)
    with pytest.raises(NetworkError):
        pc.put("b", b"x")
    svc.transport.down = False
    assert svc.store.changes(alice.account, "notes", 0, 10) == stored  # nothing reached it
    seen = []
    result = pc.sync(
        lambda local, remote: seen.append((local.plaintext, remote.plaintext)) or b"merged"
    )
    assert result.conflicts == ["a"] and seen == [(b"phone", b"laptop")]
    ac.sync()
    assert ac.get("a").plaintext == b"merged"  # type: ignore[union-attr]


def test_malformed_service_answers_are_format_errors(svc: InProcessService, alice: Device) -> None:
    rewrite_json(svc, is_chain, lambda d: {"entries": [{"entry": "!!", "sig": "x"}]})
    with pytest.raises(FormatError):
        alice.chain()
    svc.transport.rewrite = None
    raw = json.loads((alice.home.path / "chain.json").read_text())
    assert [SignedEntry.from_json(e) for e in raw]
    assert b64d(raw[0]["sig"], size=64)


def test_collections_added_later_are_readable_by_every_admin(
    svc: InProcessService, alice: Device
) -> None:
    desktop = svc.join(alice, "desktop", role="admin")
    assert acct.ensure_collections(alice, ["journal"]) == ["journal"]
    assert acct.ensure_collections(alice, ["journal"]) == []
    Collection(alice, "journal").put("a", b"entry")
    coll = Collection(desktop, "journal")
    coll.sync()
    assert coll.get("a").plaintext == b"entry"  # type: ignore[union-attr]
    assert "journal" in desktop.me(desktop.chain()).scopes
