"""The service's HTTP boundary, in process: signed requests, refusals as 4xx JSON that change
nothing, errors on the wire, probes and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest
from core_harness import InProcessService
from keystead.core import account as acct
from keystead.core.client import ServiceClient, Signer
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.errors import (
    DeviceRemoved,
    Forbidden,
    InvalidSignature,
    RateLimited,
    ServiceError,
)
from keystead.core.requests import HEADER_DIGEST, origin_of, sign_request
from keystead.core.service.app import MAX_BODY
from service_requests import (
    capsule_request,
    items_path,
    put_body,
    signed,
    snapshot,
)


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


def test_service_error_type_for_unknown_codes() -> None:
    err = ServiceError("x", 418, "teapot")
    assert err.status == 418 and err.code == "teapot"


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
