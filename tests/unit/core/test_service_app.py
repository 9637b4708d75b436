"""The service's HTTP interface, in process: refusals are 4xx JSON and change nothing."""

from __future__ import annotations

import asyncio
import hashlib
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
from keystead.core.client import ServiceClient, Signer
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.errors import (
    DeviceRemoved,
    Forbidden,
    InvalidSignature,
    NotFound,
    RateLimited,
    ServiceError,
    VerificationError,
)
from keystead.core.home import Home
from keystead.core.items import SealedItem, seal_item, sign_items
from keystead.core.keys import AccountSecrets
from keystead.core.requests import HEADER_DIGEST, origin_of, sign_request
from keystead.core.service.app import MAX_BODY
from keystead.core.service.store import PAIRING_MAX_FAILURES


def snapshot(svc: InProcessService, account: str) -> dict[str, Any]:
    s = svc.store
    return {
        "chain": [e.to_json() for e in s.chain(account)],
        "grants": s.grants(account),
        "items": {c: s.changes(account, c, 0, 10_000) for c in ("notes", "passwords")},
    }


@pytest.fixture
def alice(svc: InProcessService) -> Device:
    dev, _ = svc.create()
    Collection(dev, "notes").put("first", b"one")
    return dev


def signed(
    dev: Device, method: str, path: str, body: bytes, *, time: float | None = None
) -> dict[str, str]:
    return sign_request(
        dev.keys.signing,
        account=dev.account,
        device=dev.device_id,
        method=method,
        origin=origin_of(dev.server),
        path=path,
        body=body,
        time=int(dev.clock() if time is None else time),
    )


def items_path(dev: Device, coll: str = "notes") -> str:
    return f"/v1/accounts/{dev.account}/collections/{coll}/items"


def sealed(
    dev: Device,
    item_id: str = "evil",
    *,
    coll: str = "notes",
    version: int = 1,
    epoch: int | None = None,
    writer: Device | None = None,
) -> SealedItem:
    """An item as ``writer`` (default ``dev``) seals and signs it, under ``epoch`` (default:
    the collection's current one as ``dev``'s chain says)."""
    number = dev.chain().collection(coll).current_epoch if epoch is None else epoch
    key = dev.epoch_keys(coll, [number])[number]
    w = writer or dev
    item = seal_item(
        key,
        account=dev.account,
        collection=coll,
        item_id=item_id,
        version=version,
        epoch=number,
        plaintext=b"x",
        writer=w.device_id,
    )
    return sign_items(w.keys.signing, account=dev.account, collection=coll, items=[item])[0]


def put_body(dev: Device, *items: SealedItem) -> bytes:
    return json.dumps({"items": [i.to_json() for i in items or (sealed(dev),)]}).encode()


def post_items(
    svc: InProcessService, dev: Device, body: bytes, coll: str = "notes"
) -> httpx.Response:
    with svc.http() as http:
        return http.post(
            items_path(dev, coll),
            content=body,
            headers=signed(dev, "POST", items_path(dev, coll), body),
        )


def capsule_request(dev: Device, coll: str) -> tuple[str, int, bytes]:
    info = dev.chain().collection(coll).current
    assert info.capsule is not None
    return coll, info.epoch, info.capsule


def test_health(svc: InProcessService) -> None:
    with svc.http() as http:
        assert http.get("/v1/health").json() == {"ok": True, "version": 1, "protocol": 2}


# ---------------------------------------------------------------- request authentication
def test_a_correctly_signed_request_is_accepted(svc: InProcessService, alice: Device) -> None:
    body = put_body(alice)
    with svc.http() as http:
        r = http.post(
            items_path(alice), content=body, headers=signed(alice, "POST", items_path(alice), body)
        )
    assert r.status_code == 200, r.text


def test_replayed_nonce_is_refused(svc: InProcessService, alice: Device) -> None:
    path = items_path(alice) + "?after=0&limit=10"
    headers = signed(alice, "GET", path, b"")
    with svc.http() as http:
        assert http.get(path, headers=headers).status_code == 200
        r = http.get(path, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "replay" in r.json()["message"]


def test_replayed_write_is_refused_and_changes_nothing(
    svc: InProcessService, alice: Device
) -> None:
    body = put_body(alice)
    headers = signed(alice, "POST", items_path(alice), body)
    with svc.http() as http:
        assert http.post(items_path(alice), content=body, headers=headers).status_code == 200
        before = snapshot(svc, alice.account)
        assert http.post(items_path(alice), content=body, headers=headers).status_code == 403
    assert snapshot(svc, alice.account) == before


def test_refused_write_cannot_be_replayed_later(svc: InProcessService, alice: Device) -> None:
    """A write records its nonce in its own transaction; when the write is refused (here
    a bad body) the nonce is still recorded, so the same signed request is a replay."""
    body = b'{"items": "not a list"}'
    headers = signed(alice, "POST", items_path(alice), body)
    with svc.http() as http:
        first = http.post(items_path(alice), content=body, headers=headers)
        assert first.status_code == 400, first.text
        again = http.post(items_path(alice), content=body, headers=headers)
    assert again.status_code == 403 and "replay" in again.json()["message"]


@pytest.mark.parametrize("skew", [-121, 121, -3600])
def test_stale_timestamp_is_refused(svc: InProcessService, alice: Device, skew: int) -> None:
    body = put_body(alice)
    before = snapshot(svc, alice.account)
    with svc.http() as http:
        r = http.post(
            items_path(alice),
            content=body,
            headers=signed(alice, "POST", items_path(alice), body, time=svc.clock() + skew),
        )
    assert r.status_code == 401 and r.json()["error"] == "invalid_signature"
    assert snapshot(svc, alice.account) == before
    late = ServiceClient(
        svc.url,
        transport=svc.transport,
        clock=lambda: svc.clock() + skew,
        signer=Signer(alice.account, alice.device_id, alice.keys.signing),
    )
    with pytest.raises(InvalidSignature):
        late.get(items_path(alice)[3:])


def test_body_that_does_not_match_its_digest_is_refused(
    svc: InProcessService, alice: Device
) -> None:
    body = put_body(alice)
    headers = signed(alice, "POST", items_path(alice), b'{"items":[]}')
    before = snapshot(svc, alice.account)
    with svc.http() as http:
        r = http.post(items_path(alice), content=body, headers=headers)
        assert r.status_code == 400 and "digest" in r.json()["message"]
        # a digest that matches the body, but a signature over another one
        headers[HEADER_DIGEST] = hashlib.sha256(body).hexdigest()
        r = http.post(items_path(alice), content=body, headers=headers)
        assert r.status_code == 401
    assert snapshot(svc, alice.account) == before


def test_signature_by_another_key_or_for_another_path(svc: InProcessService, alice: Device) -> None:
    with svc.http() as http:
        h = signed(alice, "GET", items_path(alice, "passwords"), b"")
        assert http.get(items_path(alice), headers=h).status_code == 401
        h = sign_request(
            acct.DeviceKeys.generate().signing,
            account=alice.account,
            device=alice.device_id,
            method="GET",
            origin=origin_of(svc.url),
            path=items_path(alice),
            body=b"",
            time=int(svc.clock()),
        )
        assert http.get(items_path(alice), headers=h).status_code == 401
        h = signed(alice, "GET", items_path(alice), b"")
        h["keystead-device"] = f"{alice.account}/0000000000000000"
        assert http.get(items_path(alice), headers=h).status_code == 403
        assert http.get(items_path(alice)).status_code == 403  # unsigned
        # Signed by alice for another service (a peer's): not replayable here.
        h = sign_request(
            alice.keys.signing,
            account=alice.account,
            device=alice.device_id,
            method="GET",
            origin="https://peer.example",
            path=items_path(alice),
            body=b"",
            time=int(svc.clock()),
        )
        assert http.get(items_path(alice), headers=h).status_code == 401


@pytest.mark.parametrize("version", [None, "1", "3"])
def test_a_client_of_another_protocol_version_is_refused_by_name(
    svc: InProcessService, alice: Device, version: str | None
) -> None:
    path = items_path(alice)
    headers = signed(alice, "GET", path, b"")
    with httpx.Client(base_url=svc.url, transport=svc.transport) as http:
        if version is not None:
            headers["keystead-protocol"] = version
        r = http.get(path, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_version"
    assert "version 2" in r.json()["message"]


def test_request_signed_by_a_removed_device_is_refused(
    svc: InProcessService, alice: Device
) -> None:
    phone = svc.join(alice, "phone")
    Collection(phone, "notes").sync()
    acct.remove_device(alice, "phone")
    before = snapshot(svc, alice.account)
    with pytest.raises(DeviceRemoved):
        Collection(phone, "notes")._fetch_all_changes()
    with pytest.raises(DeviceRemoved):
        phone.client.post(items_path(phone)[3:], json.loads(put_body(alice)))
    with pytest.raises(DeviceRemoved):
        phone.reencrypt(phone.account, [capsule_request(phone, "notes")])
    with pytest.raises(DeviceRemoved):
        Collection(phone, "notes").sync()  # the client notices from the chain as well
    assert snapshot(svc, alice.account) == before


def test_member_without_a_scope_gets_403(svc: InProcessService, alice: Device) -> None:
    phone = svc.join(alice, "phone", scopes=["passwords"])
    assert phone.me().scopes == ("_account", "passwords")
    with pytest.raises(Forbidden):
        phone.client.get(items_path(phone, "notes")[3:])
    with pytest.raises(Forbidden):
        phone.reencrypt(phone.account, [capsule_request(phone, "notes")])
    with pytest.raises(Forbidden):  # admin-only routes
        phone.client.get(f"/accounts/{phone.account}/grants")
    Collection(phone, "passwords").sync()


def test_device_of_another_account_is_refused(svc: InProcessService, alice: Device) -> None:
    bob, _ = svc.create("bob")
    with pytest.raises(Forbidden):
        bob.client.get(items_path(alice)[3:])


# ---------------------------------------------------------------- malformed input
@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b"\xff",
        b'{"account": 5}',
        b'{"a":1,"a":2}',
        b'{"account":"x","entries":"no"}',
        b'{"account":"x","entries":[{"entry":"!!","sig":"A"}]}',
        b'{"account":"x","entries":[],"recovery_blob":"AA"}',
        b'{"account":"Bad Name","entries":[1]}',
        b"1.5",
    ],
)
def test_malformed_json_is_a_4xx_json_error(
    svc: InProcessService, alice: Device, body: bytes
) -> None:
    before = snapshot(svc, alice.account)
    with svc.http() as http:
        for path in (
            "/v1/accounts",
            f"/v1/accounts/{alice.account}/bundle",
            f"/v1/accounts/{alice.account}/pairing",
        ):
            r = http.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
            assert set(r.json()) == {"error", "message"}
        r = http.post(
            items_path(alice), content=body, headers=signed(alice, "POST", items_path(alice), body)
        )
        assert 400 <= r.status_code < 500 and r.json()["error"] == "bad_request"
    assert snapshot(svc, alice.account) == before


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


@pytest.mark.parametrize("query", ["after=x", "after=-5", "limit=0", "limit=999999999"])
def test_bad_query_parameters(svc: InProcessService, alice: Device, query: str) -> None:
    path = f"/v1/accounts/{alice.account}/chain?{query}"
    with svc.http() as http:
        r = http.get(path)
        assert r.status_code in (200, 400)
        if "after" in query:
            assert r.status_code == 400 and r.json()["error"] == "bad_request"
        path = items_path(alice) + "?" + query
        r = http.get(path, headers=signed(alice, "GET", path, b""))
        assert r.status_code == 400 and r.json()["error"] == "bad_request"


def test_unknown_account_and_route(svc: InProcessService) -> None:
    with svc.http() as http:
        r = http.get("/v1/accounts/nobody/chain")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert http.get("/v1/nothing-here").status_code == 404


def test_oversized_body_with_content_length_is_413(svc: InProcessService, alice: Device) -> None:
    before = snapshot(svc, alice.account)
    with svc.http() as http:
        r = http.post(
            f"/v1/accounts/{alice.account}/bundle",
            content=b" " * (MAX_BODY + 1),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert snapshot(svc, alice.account) == before


def test_oversized_chunked_body_is_413(svc: InProcessService, alice: Device) -> None:
    """No Content-Length: the limit counts what actually arrives."""
    sent: list[dict[str, Any]] = []
    chunk = b" " * (1024 * 1024)
    chunks = MAX_BODY // len(chunk) + 2

    async def run() -> None:
        n = 0

        async def receive() -> dict[str, Any]:
            nonlocal n
            n += 1
            return {"type": "http.request", "body": chunk, "more_body": n < chunks}

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/v1/accounts/{alice.account}/bundle",
            "raw_path": f"/v1/accounts/{alice.account}/bundle".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"content-type", b"application/json"),
                (b"keystead-protocol", b"2"),
                (b"transfer-encoding", b"chunked"),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("keystead.test", 80),
        }
        await svc.app(scope, receive, send)

    before = snapshot(svc, alice.account)
    asyncio.run(run())
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "too_large"
    assert snapshot(svc, alice.account) == before


# ---------------------------------------------------------------- pairing codes
def _join_request(svc: InProcessService, alice: Device, name: str) -> acct.JoinTicket:
    from core_harness import PASSPHRASE
    from keystead.core.home import Home

    return acct.start_join(
        Home(svc.tmp / name),
        svc.url,
        alice.account,
        name,
        PASSPHRASE,
        transport=svc.transport,
        clock=svc.clock,
    )


def test_bogus_pairing_code_is_refused(svc: InProcessService, alice: Device) -> None:
    before = snapshot(svc, alice.account)
    with pytest.raises(NotFound):
        acct.pairing_details(alice, "AAAAA-BBBBB")
    assert snapshot(svc, alice.account) == before


def test_reused_pairing_code_is_refused(svc: InProcessService, alice: Device) -> None:
    ticket = _join_request(svc, alice, "phone")
    details = acct.pairing_details(alice, ticket.code)
    acct.approve_device(alice, details)
    before = snapshot(svc, alice.account)
    with pytest.raises(NotFound):
        acct.pairing_details(alice, ticket.code)
    with pytest.raises((NotFound, VerificationError)):  # approving the same details again
        acct.approve_device(alice, details)
    assert snapshot(svc, alice.account) == before


def test_expired_pairing_code(svc: InProcessService, alice: Device) -> None:
    from core_harness import PASSPHRASE
    from keystead.core.home import Home

    ticket = _join_request(svc, alice, "phone")
    svc.clock.advance(601)
    with pytest.raises(NotFound):
        acct.pairing_details(alice, ticket.code)
    with pytest.raises(Forbidden, match="expired"):
        acct.wait_for_approval(
            Home(svc.tmp / "phone"), PASSPHRASE, 0, transport=svc.transport, clock=svc.clock
        )


def test_pairing_code_guessing_is_rate_limited_with_429(
    svc: InProcessService, alice: Device
) -> None:
    ticket = _join_request(svc, alice, "phone")
    with svc.http() as http:

        def get(code: str) -> httpx.Response:
            path = f"/v1/accounts/{alice.account}/pairing/{code}"
            return http.get(path, headers=signed(alice, "GET", path, b""))

        for i in range(PAIRING_MAX_FAILURES):
            r = get(f"AAAAA-{i:05d}")
            assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = get(ticket.code)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    with pytest.raises(RateLimited):
        acct.pairing_details(alice, ticket.code)
    svc.clock.advance(601)
    with pytest.raises(NotFound):  # the window is over; the code itself has expired meanwhile
        acct.pairing_details(alice, ticket.code)


def test_pairing_request_must_prove_the_device_key(svc: InProcessService, alice: Device) -> None:
    keys = acct.DeviceKeys.generate()
    body = keys.public_body("phone")
    other = acct.DeviceKeys.generate()
    sig = acct.sign_device_statement(other.signing, alice.account, body)
    with svc.http() as http:
        r = http.post(
            f"/v1/accounts/{alice.account}/pairing",
            json={"device": body, "statement_sig": acct.b64e(sig)},
        )
        assert r.status_code == 401
        r = http.post(
            f"/v1/accounts/{alice.account}/pairing",
            json={"device": {**body, "id": other.device_id}, "statement_sig": acct.b64e(sig)},
        )
        assert r.status_code == 400


def test_service_error_type_for_unknown_codes() -> None:
    err = ServiceError("x", 418, "teapot")
    assert err.status == 418 and err.code == "teapot"


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


# ---------------------------------------------------------------- one error table, bounds
def test_every_error_class_round_trips_through_the_wire() -> None:
    """The service answers with the class's own code and status; the client maps the code
    back to the same class (one table, not two kept in step by hand)."""
    from keystead.core.client import _error
    from keystead.core.errors import ERROR_CODES, QuotaExceeded, Unavailable
    from keystead.core.service.app import error_response

    for code, kind in ERROR_CODES.items():
        if kind is ServiceError:
            continue
        exc = (
            kind("boom", limit="x")
            if kind in (RateLimited, QuotaExceeded)
            else kind()
            if kind is Unavailable
            else kind("boom")
        )
        exc.hint = "do this"
        resp = error_response(exc)
        back = _error(
            httpx.Response(resp.status_code, content=resp.body, headers=dict(resp.headers))
        )
        assert type(back) is kind, code
        assert resp.status_code == kind.status and back.hint == "do this"
    assert ERROR_CODES["unavailable"].status == 503
    assert ERROR_CODES["quota_exceeded"].status == 413


def test_huge_integers_deep_nesting_and_unknown_routes_are_json_4xx(svc: InProcessService) -> None:
    with svc.http() as http:
        r = http.post("/v1/accounts", content=b'{"account":"x","entries":' + b"9" * 5000 + b"}")
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        deep = b'{"account":"x","entries":' + b"[" * 5000 + b"]" * 5000 + b"}"
        r = http.post("/v1/accounts", content=deep)
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        r = http.get("/v2/nothing")
        assert r.status_code == 404 and set(r.json()) == {"error", "message"}
        r = http.delete("/v1/health")
        assert r.status_code == 405 and set(r.json()) == {"error", "message"}


def _svc_with(svc: InProcessService, **limits: Any) -> InProcessService:
    """The same store behind an app with other limits."""
    from core_harness import InProcessService as Svc
    from keystead.core.service import ServiceConfig, create_app
    from keystead.core.service.context import ServiceContext

    other = Svc(svc.store, svc.clock, svc.tmp)
    other.ctx = ServiceContext(
        svc.store, clock=svc.clock, config=ServiceConfig(cpu_workers=0, **limits)
    )
    other.app = create_app(other.ctx)
    from core_harness import SyncASGITransport, TamperingTransport

    other.transport = TamperingTransport(SyncASGITransport(other.app))
    return other


def test_account_creation_per_source_is_limited_with_429(svc: InProcessService) -> None:
    limited = _svc_with(svc, accounts_per_source_hour=2)
    limited.create("one")
    limited.create("two")
    with pytest.raises(RateLimited) as e:
        limited.create("three")
    assert e.value.limit == "accounts_per_source_hour" and e.value.retry_after
    limited.clock.advance(3600)
    limited.create("three")


def test_pairing_requests_per_source_are_limited_with_429(
    svc: InProcessService, alice: Device
) -> None:
    """Pairing requests need no account: one source may store only so many an hour."""
    limited = _svc_with(svc, pairings_per_source_hour=2)

    def request() -> Any:
        keys = acct.DeviceKeys.generate()
        body = keys.public_body("phone")
        sig = acct.sign_device_statement(keys.signing, alice.account, body)
        with limited.http() as http:
            return http.post(
                f"/v1/accounts/{alice.account}/pairing",
                json={"device": body, "statement_sig": acct.b64e(sig)},
            )

    assert [request().status_code for _ in range(2)] == [201, 201]
    refused = request()
    assert refused.status_code == 429
    assert refused.json()["limit"] == "pairings_per_source_hour"
    assert int(refused.headers["retry-after"]) > 0
    limited.clock.advance(3600)
    assert request().status_code == 201


def test_unauthenticated_fields_are_bounded(svc: InProcessService, alice: Device) -> None:
    from keystead.core.errors import QuotaExceeded

    limited = _svc_with(svc, max_recovery_blob=10)
    with pytest.raises(QuotaExceeded) as e:
        limited.create("bigblob")
    assert e.value.limit == "max_recovery_blob"
    with svc.http() as http:
        r = http.post(
            f"/v1/accounts/{alice.account}/pairing",
            json={"device": {"name": "x" * 20_000}, "statement_sig": "AA"},
        )
    assert r.status_code == 413 and r.json()["limit"] == "max_body"


def test_item_and_spool_quotas_answer_413_naming_the_limit(
    svc: InProcessService, alice: Device
) -> None:
    """An account that writes past its quota is refused with the limit's name; nothing of the
    refused write is stored, and a new version of an item it has is not a new item."""
    from keystead.core.errors import QuotaExceeded

    notes = Collection(alice, "notes")
    notes.sync()
    _svc_with(svc, quota_items=40)  # the store now answers with these quotas
    written = 0
    with pytest.raises(QuotaExceeded) as e:
        for i in range(41):
            notes.put(f"n{i}", b"x")
            written += 1
    assert e.value.limit == "quota_items" and "quota_items" in str(e.value)
    assert 0 < written < 40
    notes.sync()
    assert notes.get(f"n{written}") is None  # the refused item was not stored
    notes.put("n0", b"a new version")  # replacing an item does not grow the account
    with pytest.raises(QuotaExceeded) as e:
        notes.put_many([(f"m{i}", b"y") for i in range(2)])
    assert e.value.limit == "quota_items"

    _svc_with(svc, quota_item_bytes=1)
    with pytest.raises(QuotaExceeded) as e:
        notes.put("n0", b"a version bigger than the quota")
    assert e.value.limit == "quota_item_bytes"

    _svc_with(svc, quota_spool_messages=2, quota_spool_bytes=10_000)
    now = svc.ctx.now()
    for _ in range(2):
        svc.store.spool_put(alice.account, "notes", "x", b"hi", now)
    with pytest.raises(QuotaExceeded) as e:
        svc.store.spool_put(alice.account, "notes", "x", b"hi", now)
    assert e.value.limit == "quota_spool_messages"
    _svc_with(svc, quota_spool_messages=100, quota_spool_bytes=10)
    with pytest.raises(QuotaExceeded) as e:
        svc.store.spool_put(alice.account, "notes", "x", b"y" * 20, now)
    assert e.value.limit == "quota_spool_bytes"


def test_reencryption_rate_per_account_answers_429_with_retry_after(svc: InProcessService) -> None:
    limited = _svc_with(svc, reencrypt_per_minute=3)
    dev, _ = limited.create("busy")
    info = dev.chain().collection("notes").current
    assert info.capsule is not None
    dev.reencrypt(dev.account, [("notes", info.epoch, info.capsule)] * 2)
    path = f"/v1/accounts/{dev.account}/reencrypt"
    body = json.dumps(
        {
            "requests": [{"key": "notes", "epoch": info.epoch, "capsule": acct.b64e(info.capsule)}]
            * 2
        }
    )
    with limited.http() as http:
        r = http.post(path, content=body, headers=signed(dev, "POST", path, body.encode()))
    assert r.status_code == 429 and r.json()["limit"] == "reencrypt_per_minute"
    assert 0 < int(r.headers["retry-after"]) <= 60
    metrics = httpx.Client(transport=limited.transport, base_url=limited.url).get("/metrics")
    assert 'keystead_refusals_total{limit="reencrypt_per_minute"} 1.0' in metrics.text


# ---------------------------------------------------------------- long polls
def _spool_wait(svc: InProcessService, dev: Device, wait: int) -> tuple[str, dict[str, str]]:
    path = f"/v1/accounts/{dev.account}/spool/notes?after=0&wait={wait}"
    return path, {**signed(dev, "GET", path, b""), "keystead-protocol": "2"}


def test_a_long_poll_is_woken_by_a_post_not_by_polling(
    svc: InProcessService, alice: Device
) -> None:
    import time

    async def run() -> tuple[float, Any]:
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url=svc.url) as http:
            path, headers = _spool_wait(svc, alice, 30)
            start = time.monotonic()
            waiting = asyncio.ensure_future(http.get(path, headers=headers))
            for _ in range(200):
                await asyncio.sleep(0.01)
                if svc.ctx.notifier.waiting:
                    break
            assert svc.ctx.notifier.waiting == 1
            await asyncio.sleep(0.2)  # its first read is done
            checks = svc.store.spool_get  # no database re-reads while nothing was posted
            reads = []
            svc.store.spool_get = lambda *a: reads.append(a) or checks(*a)  # type: ignore
            await asyncio.sleep(0.3)
            assert reads == []
            await asyncio.to_thread(
                svc.store.spool_put, alice.account, "notes", "x", b"hi", svc.ctx.now()
            )
            r = await waiting
            del svc.store.spool_get
            return time.monotonic() - start, r.json()

    took, answer = asyncio.run(run())
    assert [m["body"] for m in answer["messages"]] == [acct.b64e(b"hi")]
    assert took < 5
    assert svc.ctx.notifier.waiting == 0


def test_a_stop_answers_every_waiter_at_once(svc: InProcessService, alice: Device) -> None:
    import time

    async def run() -> float:
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url=svc.url) as http:
            polls = []
            for _ in range(20):
                path, headers = _spool_wait(svc, alice, 60)
                polls.append(asyncio.ensure_future(http.get(path, headers=headers)))
            for _ in range(300):
                await asyncio.sleep(0.01)
                if svc.ctx.notifier.waiting == 20:
                    break
            start = time.monotonic()
            svc.ctx.notifier.close()
            answers = await asyncio.gather(*polls)
            assert all(r.status_code == 200 and r.json()["messages"] == [] for r in answers)
            return time.monotonic() - start

    assert asyncio.run(run()) < 2
    assert svc.ctx.notifier.waiting == 0


def test_a_client_that_goes_away_leaves_no_waiter(svc: InProcessService, alice: Device) -> None:
    path, headers = _spool_wait(svc, alice, 60)
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        gone = asyncio.Event()
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        raw, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": raw,
            "raw_path": raw.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"keystead.test"),  # requests are signed to an origin
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("keystead.test", 80),
        }
        task = asyncio.ensure_future(svc.app(scope, receive, send))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if svc.ctx.notifier.waiting:
                break
        assert svc.ctx.notifier.waiting == 1, sent
        gone.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(run())
    assert svc.ctx.notifier.waiting == 0


def test_metrics_and_openapi(svc: InProcessService, alice: Device) -> None:
    with svc.http() as http:
        text = http.get("/metrics").text
        assert "keystead_request_seconds_bucket" in text and "keystead_waiters" in text
        assert 'route="/v1/accounts/{account}/collections/{collection}/items"' in text
        paths = http.get("/openapi.json").json()["paths"]
    assert "/v1/accounts/{account}/spool/{channel}" in paths and "/v1/ready" in paths


def test_health_and_readiness_probes_need_no_protocol_header(svc: InProcessService) -> None:
    """Load balancers and orchestrators probe without Keystead's header; the API refuses."""
    with httpx.Client(transport=svc.transport, base_url=svc.url) as bare:
        assert bare.get("/v1/health").status_code == 200
        r = bare.get("/v1/ready")
        assert r.status_code == 200 and r.json() == {"ready": True}
        assert bare.get("/v1/pairing/x/status").json()["error"] == "unsupported_version"
