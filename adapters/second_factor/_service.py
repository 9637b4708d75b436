"""The service's ``/v1/confirm`` routes: RP tokens, prompts into the spool, first answer wins.

The service never reads a prompt (it is sealed to the account's ``confirm`` key)
and cannot forge an answer (devices sign them; relying parties verify against
the account chain). What it enforces: only an allowed RP (or a live device of
the account) may post prompts, only a live device with the ``confirm`` scope may
answer, one answer per request (an atomic create-only record), and only the
poster may read the answer. Long polls await the service's notifier (woken by the
commit of a prompt or an answer, in any service process on the same database), then
re-read the database.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request
from keystead.core import b64d, b64e, canonical_json
from keystead.core.capabilities import RecordNamespace, ServiceCapabilities, ServiceChannel
from keystead.core.errors import Conflict, Forbidden, FormatError, NotFound

from ._confirm_protocol import Decision, open_answer, parse_answer
from ._wire import (
    CHANNEL,
    NS_ANSWER,
    NS_REPORT,
    NS_REQUEST,
    NS_RP,
    Envelope,
    RequestRecord,
    check_request_id,
    check_rp_name,
    device_rp_name,
    parse_bearer,
    parse_new_request,
    rp_of_token,
    token_matches,
)

__all__ = ["confirm_router"]

MAX_WAIT = 60
PURGE_AFTER = 600  # request records are dropped this long after they expire
_DUMMY_HASH = "0" * 64
SERVICE_SENDER = "confirm:"  # the sender of every prompt row: the service, for an RP


def confirm_router(caps: ServiceCapabilities) -> APIRouter:
    """The routes, built from the adapter's capabilities only: its ``confirm.*`` records and
    its ``confirm`` channel (written as the service, for an authenticated RP or device)."""
    r = APIRouter(prefix="/v1/confirm")
    ctx = caps
    rp_records, request_records = caps.records(NS_RP), caps.records(NS_REQUEST)
    answer_records, report_records = caps.records(NS_ANSWER), caps.records(NS_REPORT)
    channel = caps.channel(CHANNEL)

    async def relying_party(request: Request, account: str) -> str:
        """The RP an ``Authorization: Bearer`` token stands for, or the requesting device."""
        if request.headers.get("authorization") is None:
            device = await ctx.authenticate(request, account=account)
            return device_rp_name(device.name)
        token = parse_bearer(request.headers.get("authorization"))
        try:
            rp = rp_of_token(token)
        except FormatError:
            raise Forbidden("unknown or revoked relying party token") from None
        raw = rp_records.get(account, rp)
        stored = json.loads(raw)["hash"] if raw is not None else _DUMMY_HASH
        if not token_matches(token, stored) or raw is None:
            raise Forbidden("unknown or revoked relying party token")
        return rp

    def load_request(account: str, request_id: str) -> RequestRecord:
        raw = request_records.get(account, check_request_id(request_id))
        if raw is None:
            raise NotFound("no such confirmation request")
        return RequestRecord.from_bytes(raw)

    # ------------------------------------------------------------- admin: RPs
    @r.put("/{account}/rps/{rp}")
    async def allow(account: str, rp: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        obj = await ctx.json_body(request)
        digest = obj.get("token_sha256")
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise FormatError("token_sha256 must be 64 lower-case hex digits")
        rp_records.put(
            account,
            check_rp_name(rp),
            canonical_json({"hash": digest, "created": ctx.now()}),
            ctx.now(),
        )
        return {"ok": True}

    @r.get("/{account}/rps")
    async def rps(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        reports: dict[str, int] = {}
        for _, value in report_records.list(account):
            rp = json.loads(value)["rp"]
            reports[rp] = reports.get(rp, 0) + 1
        return {
            "rps": [
                {
                    "name": name,
                    "created": json.loads(value)["created"],
                    "reports": reports.get(name, 0),
                }
                for name, value in rp_records.list(account)
            ]
        }

    @r.delete("/{account}/rps/{rp}")
    async def disallow(account: str, rp: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        if not rp_records.delete(account, check_rp_name(rp)):
            raise NotFound(f"no relying party {rp!r} is allowed")
        return {"ok": True}

    @r.get("/{account}/reports")
    async def reports(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        return {
            "reports": [
                {"id": key, **json.loads(value)} for key, value in report_records.list(account)
            ]
        }

    # ----------------------------------------------------------- RP: prompts
    @r.post("/{account}/requests", status_code=201)
    async def create(account: str, request: Request) -> dict[str, Any]:
        rp = await relying_party(request, account)
        now = ctx.now()
        request_id, expires, sealed = parse_new_request(await ctx.json_body(request), now)
        envelope = Envelope(request_id, rp, expires, sealed)

        def store() -> None:  # database work, in the thread pool
            # Sealed to an older epoch, a removed device could read it: 409, the RP seals again.
            caps.require_current_epoch(account, CHANNEL, sealed)
            spool_id = channel.put(account, SERVICE_SENDER + rp, envelope.to_bytes(), now, expires)
            try:
                request_records.put(
                    account,
                    request_id,
                    RequestRecord(rp, now, expires, spool_id).to_bytes(),
                    now,
                    create_only=True,
                )
            except Conflict:
                channel.delete(account, spool_id)
                raise Conflict("a request with this id already exists") from None
            if secrets.randbelow(64) == 0:
                _purge(request_records, answer_records, channel, account, now)

        await caps.run(store)
        return {"id": request_id, "expires": expires}

    # ---------------------------------------------------------- device: prompts
    @r.get("/{account}/prompts")
    async def prompts(account: str, request: Request) -> dict[str, Any]:
        """Unanswered, unexpired prompts after spool id ``after``; long-polls up to ``wait``."""
        await ctx.authenticate(request, account=account, scope=CHANNEL)
        after = _int_param(request, "after", 0, 2**62)
        msgs = await caps.wait_for(
            request,
            [f"spool:{account}:{CHANNEL}"],
            _wait_param(request),
            lambda: channel.get(account, after, 1000, ctx.now()),
        )
        out = []
        for m in msgs:
            # Only rows this service wrote for a request count; anything else (a row from
            # before posters were enforced, a damaged one) is skipped, never a 400 that
            # would hide every real prompt behind it.
            if not m.sender.startswith(SERVICE_SENDER):
                continue
            try:
                env = Envelope.from_bytes(m.body)
            except FormatError:
                continue
            if answer_records.get(account, env.request_id) is None:
                out.append({"id": m.id, "body": b64e(m.body)})
        return {"prompts": out, "cursor": max([after, *(m.id for m in msgs)])}

    @r.get("/{account}/requests/{request_id}/answer")
    async def get_answer(account: str, request_id: str, request: Request) -> dict[str, Any]:
        rp = await relying_party(request, account)
        record = load_request(account, request_id)
        if not secrets.compare_digest(record.rp.encode(), rp.encode()):
            raise NotFound("no such confirmation request")
        answer = await caps.wait_for(
            request,
            [f"record:{account}:{NS_ANSWER}"],
            min(_wait_param(request), max(0, record.expires - ctx.now())),
            lambda: answer_records.get(account, request_id),
            lambda found: found is not None or ctx.now() >= record.expires,
        )
        return {
            "id": request_id,
            "expires": record.expires,
            "answer": None if answer is None else b64e(answer),
        }

    # -------------------------------------------------------- device: answers
    @r.post("/{account}/requests/{request_id}/answer", status_code=201)
    async def post_answer(account: str, request_id: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request, account=account, scope=CHANNEL)
        record = load_request(account, request_id)
        now = ctx.now()
        if now >= record.expires:
            raise FormatError("the request has expired")
        obj = await ctx.json_body(request)
        if set(obj) != {"answer"}:
            raise FormatError("expected {answer}")
        answer = b64d(obj["answer"], what="answer")
        body = _check_answer(answer, device.id, device.signing_key, request_id, record.rp)

        def store() -> None:  # database work, in the thread pool
            try:
                answer_records.put(account, request_id, answer, now, create_only=True)
            except Conflict:
                raise Conflict("this request has already been answered") from None
            if body["decision"] == Decision.REPORT:
                report_records.put(
                    account,
                    request_id,
                    canonical_json({"rp": record.rp, "device": device.name, "at": now}),
                    now,
                )

        await caps.run(store)
        # The prompt stays in the spool until it expires (devices skip answered ones): on
        # SQLite, deleting the newest spool row lets the next one reuse its id, and a device
        # waiting "after" that id would never see it.
        return {"ok": True}

    return r


def _check_answer(
    answer: bytes, device_id: str, key: Any, request_id: str, rp: str
) -> dict[str, Any]:
    """What the service can check without the prompt: signer, request and RP.
    (The RP checks everything again, with the prompt, against the account chain.)"""
    signed = parse_answer(answer)  # the same envelope and body checks as the RP's
    if signed.signer != device_id:
        raise FormatError("the answer must be signed by the device that sends it")
    body = open_answer(signed, key)
    if body.get("id") != request_id or body.get("rp") != rp:
        raise FormatError("the answer is for another request")
    if body.get("decision") not in {d.value for d in Decision}:
        raise FormatError("unknown decision")
    return body


def _wait_param(request: Request) -> float:
    raw = request.query_params.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        raise FormatError("wait must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT:
        raise FormatError(f"wait is 0 to {MAX_WAIT} seconds")
    return wait


def _purge(
    requests: RecordNamespace,
    answers: RecordNamespace,
    channel: ServiceChannel,
    account: str,
    now: int,
) -> None:
    """Drop request records, answers and spool messages well past their expiry (reports
    stay), except the newest spool message: its id must not be reused (see post_answer)."""
    records = [(key, RequestRecord.from_bytes(value)) for key, value in requests.list(account)]
    newest = max((r.spool_id for _, r in records), default=0)
    for key, record in records:
        if record.expires + PURGE_AFTER < now and record.spool_id != newest:
            channel.delete(account, record.spool_id)
            requests.delete(account, key)
            answers.delete(account, key)


def _int_param(request: Request, name: str, low: int, high: int) -> int:
    try:
        value = int(request.query_params.get(name, str(low)))
    except ValueError:
        raise FormatError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise FormatError(f"{name} out of range")
    return value
