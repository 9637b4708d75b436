"""The Keystead service: FastAPI routes over :class:`Store`.

Every route is versioned under ``/v1``. Bad input is a 4xx JSON error
``{"error": CODE, "message": TEXT}``; nothing is stored unless the whole
request is valid. Adapters add their own routers through the adapter interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _umbral
from .._encoding import b64d, b64e
from .._umbral import CAPSULE_SIZE
from ..adapter import Channel
from ..bundle import bundle_digest
from ..chain import (
    SignedEntry,
    check_collection,
    verify_pairing_request,
)
from ..errors import (
    Conflict,
    DeviceRemoved,
    Forbidden,
    FormatError,
    InvalidSignature,
    KeysteadError,
    NotFound,
    RateLimited,
    VerificationError,
)
from ..items import SealedItem
from .context import ServiceContext, dumps, require
from .protocol import PROTOCOL_VERSION, ProtocolVersion
from .store import Bundle, Grant

__all__ = ["create_app"]

MAX_BODY = 32 * 1024 * 1024
MAX_BATCH = 20_000
MAX_WAIT = 60

_STATUS: list[tuple[type[KeysteadError], int, str]] = [
    (DeviceRemoved, 403, "device_removed"),
    (RateLimited, 429, "rate_limited"),
    (InvalidSignature, 401, "invalid_signature"),
    (VerificationError, 400, "verification_failed"),
    (Conflict, 409, "conflict"),
    (NotFound, 404, "not_found"),
    (Forbidden, 403, "forbidden"),
    (FormatError, 400, "bad_request"),
    (KeysteadError, 400, "bad_request"),
]


def error_response(exc: KeysteadError) -> JSONResponse:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return JSONResponse({"error": code, "message": str(exc)}, status_code=status)
    raise AssertionError("unreachable")  # pragma: no cover


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not Content-Length says so."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    resp = JSONResponse({"error": "too_large", "message": "request body too large"}, 413)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(resp.body)).encode())]})
    await send({"type": "http.response.body", "body": resp.body})


def _entries(obj: dict[str, Any]) -> list[SignedEntry]:
    raw = require(obj, "entries", list)
    if len(raw) > 1000:
        raise FormatError("too many chain entries at once")
    return [SignedEntry.from_json(e) for e in raw]


def _grants(obj: dict[str, Any]) -> list[Grant]:
    out = []
    for g in require(obj, "grants", list):
        if not isinstance(g, dict):
            raise FormatError("grant: expected an object")
        expires = g.get("expires")
        if expires is not None and not isinstance(expires, int):
            raise FormatError("grant: expires must be an integer")
        out.append(Grant(check_collection(require(g, "key", str)), require(g, "epoch", int),
                         require(g, "target_kind", str), require(g, "target", str),
                         require(g, "target_generation", int),
                         b64d(g.get("kfrag"), what="kfrag"), expires))
    return out


def _bundle(obj: dict[str, Any], *, base: bool = True) -> Bundle:
    """Parse a bundle (docs/PROTOCOL.md, "Bundles"); every part is checked when applied."""
    if base:
        b = require(obj, "base", dict)
        base_seq, base_head = require(b, "seq", int), require(b, "head", str)
        if base_seq < 0:
            raise FormatError("bundle base: seq counts from 0")
    else:
        base_seq, base_head = -1, ""
    deletes = []
    for d in require(obj, "delete_grants", list):
        if not isinstance(d, dict):
            raise FormatError("delete_grants: expected objects")
        deletes.append((check_collection(require(d, "key", str)), require(d, "target_kind", str),
                        require(d, "target", str)))
    items = []
    raw_items = require(obj, "items", list)
    if len(raw_items) > MAX_BATCH:
        raise FormatError(f"at most {MAX_BATCH} items in one bundle")
    for i in raw_items:
        if not isinstance(i, dict):
            raise FormatError("bundle item: expected an object")
        items.append((check_collection(require(i, "collection", str)),
                      SealedItem.from_json({k: v for k, v in i.items() if k != "collection"})))
    blob = obj.get("recovery_blob")
    return Bundle(base_seq, base_head, _entries(obj), _grants(obj), deletes, items,
                  None if blob is None else b64d(blob, what="recovery blob"))


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FormatError(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise FormatError(f"query parameter {name!r} out of range")
    return value


def core_router(ctx: ServiceContext, channels: Mapping[str, Channel]) -> APIRouter:
    r = APIRouter(prefix="/v1")
    store = ctx.store

    @r.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "version": 1, "protocol": PROTOCOL_VERSION}

    @r.post("/accounts", status_code=201)
    async def create_account(request: Request) -> dict[str, Any]:
        obj = await ctx.json_body(request)
        state = store.create_account(require(obj, "account", str), _bundle(obj, base=False),
                                     ctx.now())
        return {"seq": state.seq, "head": state.head}

    @r.get("/accounts/{account}/chain")
    async def chain(account: str, request: Request) -> dict[str, Any]:
        after = _int_param(request, "after", -1, -1, 2**31)
        return {"entries": [e.to_json() for e in store.chain(account, after)]}

    @r.post("/accounts/{account}/bundle")
    async def bundle(account: str, request: Request) -> dict[str, Any]:
        # A live admin device sends it, so a removed admin that kept the account key cannot
        # write; or the recovery key signs it (a recovering device is not live yet).
        obj = await ctx.json_body(request)
        parsed = _bundle(obj)
        if "recovery_sig" in obj:
            sig = b64d(obj.get("recovery_sig"), what="recovery signature")
            _umbral.verify(store.chain_state(account).recovery_key, bundle_digest(obj), sig)
            writer = None
        else:
            writer = (await ctx.authenticate(request, account=account, admin=True)).id
        state = store.apply_bundle(account, parsed, writer, ctx.now())
        return {"seq": state.seq, "head": state.head}

    @r.get("/accounts/{account}/recovery")
    async def recovery(account: str) -> dict[str, Any]:
        return {"blob": b64e(store.recovery_blob(account))}

    @r.get("/accounts/{account}/collections/{collection}/items")
    async def changes(account: str, collection: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, scope=collection)
        after = _int_param(request, "after", 0, 0, 2**62)
        limit = _int_param(request, "limit", 1000, 1, MAX_BATCH)
        items = store.changes(account, collection, after, limit)
        return {"items": [i.to_json() for i in items]}

    @r.post("/accounts/{account}/collections/{collection}/items")
    async def put_items(account: str, collection: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request, account=account, scope=collection)
        raw = require(await ctx.json_body(request), "items", list)
        if len(raw) > MAX_BATCH:
            raise FormatError(f"at most {MAX_BATCH} items in one write")
        items = [SealedItem.from_json(i) for i in raw]
        return {"seqs": store.put_items(account, collection, items, device.id)}

    @r.get("/accounts/{account}/grants")
    async def list_grants(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        key = request.query_params.get("key")
        return {"grants": [
            {"key": g.key, "epoch": g.epoch, "target_kind": g.target_kind, "target": g.target,
             "target_generation": g.target_generation, "expires": g.expires}
            for g in store.grants(account, key)]}

    @r.post("/accounts/{account}/reencrypt")
    async def reencrypt(account: str, request: Request) -> dict[str, Any]:
        # A removed device gets as far as the store, which refuses it and audits the refusal.
        device = await ctx.authenticate(request, live=False)
        obj = await ctx.json_body(request)
        reqs = require(obj, "requests", list)
        if not reqs or len(reqs) > MAX_BATCH:
            raise FormatError(f"between 1 and {MAX_BATCH} capsules per request")
        pairs = []
        for q in reqs:
            if not isinstance(q, dict):
                raise FormatError("reencrypt request: expected an object")
            pairs.append((require(q, "key", str), require(q, "epoch", int),
                          b64d(q.get("capsule"), size=CAPSULE_SIZE, what="capsule")))
        context = obj.get("context", "")
        if not isinstance(context, str):
            raise FormatError("context must be a string")
        out = store.reencrypt(account, pairs, device, context, ctx.now())
        return {"cfrags": [{"cfrag": b64e(c), "generation": g} for c, g in out]}

    @r.get("/accounts/{account}/audit")
    async def audit(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        q = request.query_params
        outcome = q.get("outcome")
        if outcome not in (None, "allowed", "refused"):
            raise FormatError("outcome is 'allowed' or 'refused'")
        records = store.audit(account, q.get("prefix", ""),
                              after=_int_param(request, "after", 0, 0, 2**62),
                              limit=_int_param(request, "limit", 1000, 1, 1000),
                              grantee=q.get("grantee"),
                              allowed=None if outcome is None else outcome == "allowed")
        return {"records": [r.__dict__ for r in records]}

    @r.post("/accounts/{account}/pairing", status_code=201)
    async def pairing(account: str, request: Request) -> dict[str, Any]:
        obj = await ctx.json_body(request)
        code, token = store.create_pairing(account, _pairing_request(account, obj), ctx.now())
        return {"code": code, "token": token}

    @r.get("/accounts/{account}/pairing/{code}")
    async def pairing_get(account: str, code: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        return {"request": b64e(store.pairing_request(account, code, ctx.now()))}

    @r.post("/accounts/{account}/pairing/{code}/approve")
    async def pairing_approve(account: str, code: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        obj = await ctx.json_body(request)
        store.approve_pairing(account, code, require(obj, "device_id", str), _entries(obj),
                              _grants(obj), ctx.now())
        return {"ok": True}

    @r.get("/pairing/{code}/status")
    async def pairing_status(code: str, request: Request) -> dict[str, Any]:
        token = request.query_params.get("token", "")
        return {"status": store.pairing_status(code, token, ctx.now())}

    @r.post("/accounts/{account}/spool/{channel}", status_code=201)
    async def spool_put(account: str, channel: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request)
        # Who may post is the channel's adapter's declaration; a channel no adapter declares,
        # and posters that only the adapter's own routes stand for, are refused here.
        policy = channels.get(channel)
        if policy is None or not policy.accepts_device(own=device.account == account):
            raise Forbidden(f"this device may not post to the {channel!r} channel of {account}")
        obj = await ctx.json_body(request)
        expires = obj.get("expires")
        if expires is not None and not isinstance(expires, int):
            raise FormatError("expires must be an integer")
        body = b64d(obj.get("body"), what="spool body")
        msg_id = store.spool_put(account, check_collection(channel),
                                 f"{device.account}/{device.id}", body, ctx.now(), expires)
        return {"id": msg_id}

    @r.get("/accounts/{account}/spool/{channel}")
    async def spool_get(account: str, channel: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, scope=channel)
        after = _int_param(request, "after", 0, 0, 2**62)
        wait = _int_param(request, "wait", 0, 0, MAX_WAIT)
        limit = _int_param(request, "limit", 1000, 1, MAX_BATCH)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            msgs = store.spool_get(account, channel, after, limit, ctx.now())
            if msgs or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.05)
        return {"messages": [{"id": m.id, "sender": m.sender, "body": b64e(m.body),
                              "created": m.created} for m in msgs]}

    @r.delete("/accounts/{account}/spool/{channel}/{message_id}")
    async def spool_delete(account: str, channel: str, message_id: int,
                           request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, scope=channel)
        if not store.spool_delete(account, channel, message_id):
            raise NotFound("no such message")
        return {"ok": True}

    return r


def _pairing_request(account: str, obj: dict[str, Any]) -> bytes:
    """Check a joining device's request (it proves it holds its signing key) and keep its bytes."""
    device, sig, _ = verify_pairing_request(account, obj)
    return dumps({"device": device, "statement_sig": b64e(sig)})


def create_app(ctx: ServiceContext, routers: Iterable[APIRouter] = (), *,
               channels: Mapping[str, Channel] | None = None) -> FastAPI:
    """The ASGI app: core routes plus any adapter routers; ``channels`` are the spool
    channels the adapters declared (none: the generic spool route takes no posts)."""
    app = FastAPI(title="Keystead", version="1", docs_url=None, redoc_url=None)
    app.include_router(core_router(ctx, channels or {}))
    for router in routers:
        app.include_router(router)

    @app.exception_handler(KeysteadError)
    async def _keystead_error(request: Request, exc: KeysteadError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "message": "malformed request"}, 400)

    app.add_middleware(BodyLimit)
    app.add_middleware(ProtocolVersion)
    return app
