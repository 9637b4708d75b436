"""Pairing codes, per-source and per-account limits, quotas and long-poll waiters, in process:
every refusal a 413/429 naming its limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from core_harness import PASSPHRASE, InProcessService
from keystead.core import account as acct
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    VerificationError,
)
from keystead.core.home import Home
from keystead.core.service.store import PAIRING_MAX_FAILURES
from service_requests import (
    signed,
    snapshot,
)


# ---------------------------------------------------------------- pairing codes
def _join_request(svc: InProcessService, alice: Device, name: str) -> acct.JoinTicket:

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
