"""Readers on protocol v2: every item names and signs its writer; what cannot be opened or
trusted is skipped and named, and never stops the rest of the collection."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from core_harness import InProcessService
from keystead.core import account as acct
from keystead.core.collections import Collection
from keystead.core.crypto import random_bytes
from keystead.core.device import Device
from keystead.core.errors import Forbidden
from keystead.core.items import SealedItem, seal_item, sign_items


@pytest.fixture
def alice(svc: InProcessService) -> Device:
    dev, _ = svc.create()
    return dev


def _seal(
    owner: Device,
    writer: Device,
    item_id: str,
    plaintext: bytes,
    *,
    epoch: int,
    key: bytes | None = None,
    coll: str = "notes",
    version: int = 1,
) -> SealedItem:
    """An item of ``owner``'s account, sealed under ``epoch``'s data key (or ``key``) and
    signed by ``writer``."""
    data_key = key if key is not None else owner.epoch_keys(coll, [epoch])[epoch]
    item = seal_item(
        data_key,
        account=owner.account,
        collection=coll,
        item_id=item_id,
        version=version,
        epoch=epoch,
        plaintext=plaintext,
        writer=writer.device_id,
    )
    return sign_items(writer.keys.signing, account=owner.account, collection=coll, items=[item])[0]


def _serve_also(svc: InProcessService, coll: str, extra: list[SealedItem]) -> None:
    """The service adds ``extra`` to its answers for ``coll``'s items (what a service that
    colludes with a removed device, or a database edit, would do)."""

    def rewrite(request: httpx.Request, resp: httpx.Response) -> httpx.Response:
        if not (request.method == "GET" and request.url.path.endswith(f"/{coll}/items")):
            return resp
        items = resp.json()["items"]
        top = max([i["seq"] for i in items], default=int(request.url.params["after"]))
        added = [{**i.to_json(), "seq": top + 1000 + n} for n, i in enumerate(extra)]
        return httpx.Response(200, json={"items": items + added}, request=request)

    svc.transport.rewrite = rewrite


def _ids(records: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(r.id for r in records)


def test_records_skip_an_unreadable_item_and_unreadable_names_it(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    ac = Collection(alice, "notes")
    ac.put("good", b"fine")
    # A member writes garbage that the service cannot tell from a real item: right epoch,
    # its own valid signature, a ciphertext under a key nobody has.
    junk = _seal(alice, phone, "junk", b"x", epoch=1, key=random_bytes(32))
    phone.client.post(
        f"/accounts/{alice.account}/collections/notes/items", {"items": [junk.to_json()]}
    )
    ac.put("after", b"still fine")
    result = ac.sync()
    assert _ids(ac.records()) == ["after", "good"]
    assert ac.get("good").plaintext == b"fine"  # type: ignore[union-attr]
    assert ac.get("junk") is None
    [bad] = ac.unreadable()
    assert (bad.id, bad.writer) == ("junk", phone.device_id)
    assert "decrypt" in bad.reason
    assert [u.id for u in result.unreadable] == ["junk"]
    # Named by the sync that brought it, once; unreadable() still lists it on demand.
    assert ac.sync().unreadable == []
    assert [u.id for u in ac.unreadable()] == ["junk"]
    # An admin drops it; every device then reads the collection clean.
    assert ac.drop([bad.id]) == 1
    pc = Collection(phone, "notes")
    pc.sync()
    assert pc.unreadable() == [] and _ids(pc.records()) == ["after", "good"]


def test_item_written_by_a_removed_device_under_a_later_epoch_is_skipped(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    pc = Collection(phone, "notes")
    pc.put("before", b"written while live")
    acct.remove_device(alice, "phone")
    notes = alice.chain().collection("notes")
    assert notes.current_epoch == 2
    assert notes.current.seq > alice.chain().devices[phone.device_id].removed_seq  # type: ignore[operator]
    # Everything else about it is right: the epoch-2 key (as if it leaked) and phone's own
    # signature. Only the writer's removal before the epoch began gives it away.
    forged = _seal(alice, phone, "forged", b"after removal", epoch=2)
    ac = Collection(alice, "notes")
    _serve_also(svc, "notes", [forged])
    ac.sync()
    assert _ids(ac.records()) == ["before"]  # phone's item from when it was live stays
    [skipped] = ac.unreadable()
    assert (skipped.id, skipped.writer) == ("forged", phone.device_id)
    assert "removal" in skipped.reason
    # The control: the same item from a live device under epoch 2 is read.
    svc.transport.rewrite = None
    ac.put("control", b"by alice")
    ac.sync()
    assert ac.get("control").plaintext == b"by alice"  # type: ignore[union-attr]
    assert ac.get("control").writer == alice.device_id  # type: ignore[union-attr]


def test_admin_only_collections_trust_only_admin_writers(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    ac = Collection(alice, "_account")
    ac.put("note", b"by the admin")
    # The service refuses the member's write...
    with pytest.raises(Forbidden):
        Collection(phone, "_account").put("sharing-9", b"x")
    # ...and a reader refuses it too when a service serves it anyway.
    by_member = _seal(alice, phone, "sharing-9", b"x", epoch=1, coll="_account")
    _serve_also(svc, "_account", [by_member])
    ac.sync()
    assert _ids(ac.records()) == ["note", "sharing-0"]
    [skipped] = ac.unreadable()
    assert skipped.id == "sharing-9" and "not an admin" in skipped.reason
    record = ac.get("note")
    assert record is not None and record.by_admin and record.writer == alice.device_id


def test_item_names_its_writer_and_a_signature_from_another_device_is_skipped(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(phone, "notes").put("mine", b"from phone")
    ac = Collection(alice, "notes")
    ac.sync()
    record = ac.get("mine")
    assert record is not None and record.writer == phone.device_id and not record.by_admin
    # Phone's bytes relabelled as written by alice: alice's key did not sign them.
    [stored] = svc.store.changes(alice.account, "notes", 0, 10)
    from dataclasses import replace

    relabelled = replace(stored, id="theirs", writer=alice.device_id)
    _serve_also(svc, "notes", [relabelled])
    ac.sync()
    assert "theirs" in [u.id for u in ac.unreadable()]


def test_a_writer_with_a_stale_chain_seals_again_under_the_new_epoch(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(alice, "notes").put("seed", b"read by phone")
    pc = Collection(phone, "notes")
    pc.sync()
    assert pc.get("seed") is not None  # phone now holds epoch 1's data key
    assert phone.chain().collection("notes").current_epoch == 1
    tablet = svc.join(alice, "tablet", scopes=["notes"])
    acct.remove_device(alice, "tablet")  # epoch 2 of notes; phone's cached chain says 1
    assert tablet.device_id in alice.chain().devices
    pc.put("a", b"written on a stale chain")  # refused with 409, resealed, accepted
    stored = svc.store.changes(alice.account, "notes", 0, 10)[-1]
    assert (stored.id, stored.epoch, stored.writer) == ("a", 2, phone.device_id)
    ac = Collection(alice, "notes")
    ac.sync()
    assert ac.get("a").plaintext == b"written on a stale chain"  # type: ignore[union-attr]


Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


def test_a_write_queued_offline_is_pushed_signed_and_resealed_after_a_rotation(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(alice, "notes").put("seed", b"x")
    pc = Collection(phone, "notes")
    pc.sync()
    assert pc.get("seed") is not None

    svc.transport.down = True
    pc.put("offline", b"queued while away", offline=True)
    svc.transport.down = False
    assert svc.store.changes(alice.account, "notes", 0, 10)[-1].id == "seed"
    [queued] = phone.cache.pending("notes")
    assert queued.writer == phone.device_id and queued.signature  # kept as signed
    svc.join(alice, "tablet", scopes=["notes"])
    acct.remove_device(alice, "tablet")  # notes moves to epoch 2 meanwhile
    result = pc.sync()
    assert result.pushed == 1 and result.conflicts == [] and result.unreadable == []
    stored = svc.store.changes(alice.account, "notes", 0, 10)[-1]
    assert (stored.id, stored.epoch, stored.writer) == ("offline", 2, phone.device_id)
    ac = Collection(alice, "notes")
    ac.sync()
    assert ac.get("offline").plaintext == b"queued while away"  # type: ignore[union-attr]


def test_an_item_by_a_device_newer_than_the_readers_chain_is_read(
    svc: InProcessService, alice: Device
) -> None:
    """The reader's chain predates the writer's joining (a sync whose chain was fetched
    just before): it learns the writer instead of marking the item unreadable for good."""
    ac = Collection(alice, "notes")
    ac.sync()
    seen = alice.chain().seq
    phone = svc.join(alice, "phone", scopes=["notes"])
    Collection(phone, "notes").put("hello", b"from the new phone")
    alice._chain = None  # noqa: SLF001 - forget the chain the join fetched
    (alice.home.path / "chain.json").write_text(
        json.dumps([e.to_json() for e in svc.store.chain(alice.account)[: seen + 1]])
    )
    alice.keystore.data["seen"] = {"seq": seen, "head": svc.store.chain(alice.account)[seen].digest}
    assert phone.device_id not in alice.chain(refresh=False).devices
    result = ac.sync(refresh_chain=False)
    assert result.unreadable == [] and ac.unreadable() == []
    assert ac.get("hello").plaintext == b"from the new phone"  # type: ignore[union-attr]
