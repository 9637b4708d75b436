"""The Keystead service: FastAPI routes over :class:`Store`.

Every route is versioned under ``/v1``. Bad input is a 4xx JSON error
``{"error": CODE, "message": TEXT}`` (plus ``limit`` naming the limit of a 413/429, and
``hint``); the code and status come from the error class itself (:mod:`keystead.core.errors`).
Nothing is stored unless the whole request is valid. Adapters add their own routers
through the adapter interface.

The event loop only parses, verifies signatures and waits: database work runs in the
thread pool (``ctx.run``), re-encryption in the CPU pool, long polls await the notifier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _umbral
from .._encoding import b64d, b64e
from ..adapter import Channel
from ..bundle import bundle_digest
from ..chain import (
    check_collection,
)
from ..errors import (
    Forbidden,
    FormatError,
    KeysteadError,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)
from ..items import SealedItem
from . import wire
from ._store_base import AuthDevice, Nonce
from .config import ServiceConfig
from .context import JSONBytes, ServiceContext, dumps, require
from .notify import PostgresListener
from .observe import AccessLog, Metrics
from .protocol import PROTOCOL_VERSION, ProtocolVersion
from .push import push_router

__all__ = ["create_app"]

MAX_BODY = ServiceConfig().max_body

log = logging.getLogger("keystead.service")

PAIRING_BODY = 16 * 1024
"""A pairing request (unauthenticated) is one device's public keys and names: small."""
ACCOUNT_BODY = 1024 * 1024
"""An account's first chain entries and its recovery blob (unauthenticated)."""


def error_response(exc: KeysteadError) -> JSONResponse:
    """The one error table: code and status are attributes of the error's class."""
    body: dict[str, Any] = {"error": exc.code, "message": str(exc)}
    headers = {}
    if isinstance(exc, (RateLimited, QuotaExceeded)) and exc.limit:
        body["limit"] = exc.limit
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.hint:
        body["hint"] = exc.hint
    return JSONResponse(body, status_code=exc.status, headers=headers)


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
    resp = JSONResponse(
        {"error": "too_large", "message": "request body too large (max_body)", "limit": "max_body"},
        413,
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(resp.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": resp.body})


def core_router(ctx: ServiceContext, channels: Mapping[str, Channel]) -> APIRouter:
    r = APIRouter(prefix="/v1")
    store = ctx.store

    @r.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the process answers (no database work)."""
        return {"ok": True, "version": 1, "protocol": PROTOCOL_VERSION}

    @r.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the database answers (and, on PostgreSQL, notifications arrive)."""

        def ping() -> None:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await ctx.run(ping)
        except (DBAPIError, PoolTimeout):
            return JSONResponse({"ready": False, "reason": "database"}, 503)
        listener = ctx.listener
        if listener is not None and not listener.connected.is_set():
            return JSONResponse({"ready": False, "reason": "notifications"}, 503)
        return JSONResponse({"ready": True})

    @r.post("/accounts", status_code=201)
    async def create_account(request: Request) -> dict[str, Any]:
        cfg = ctx.config
        obj = await ctx.json_body(request, limit=ACCOUNT_BODY)
        name, parsed = require(obj, "account", str), wire.bundle(obj, base=False)
        wire.recovery_blob(ctx, obj.get("recovery_blob"))  # bounded before anything is stored
        await ctx.run(
            store.hit,
            f"accounts:{ctx.source(request)}",
            cfg.accounts_per_source_hour,
            3600,
            ctx.now(),
            name="accounts_per_source_hour",
        )
        state = await ctx.run(store.create_account, name, parsed, ctx.now())
        return {"seq": state.seq, "head": state.head}

    @r.get("/accounts/{account}/chain")
    async def chain(account: str, request: Request) -> dict[str, Any]:
        after = wire.int_param(request, "after", -1, -1, 2**31)
        return {"entries": [e.to_json() for e in await ctx.run(store.chain, account, after)]}

    @r.post("/accounts/{account}/bundle")
    async def bundle(account: str, request: Request) -> dict[str, Any]:
        # A live admin device sends it, so a removed admin that kept the account key cannot
        # write; or the recovery key signs it (a recovering device is not live yet).
        obj = await ctx.json_body(request)
        parsed = wire.bundle(obj)
        if "recovery_sig" in obj:
            sig = b64d(obj.get("recovery_sig"), what="recovery signature")
            state = await ctx.run(store.chain_state, account)
            _umbral.verify(state.recovery_key, bundle_digest(obj), sig)
            writer = None
        else:
            writer = (await ctx.authenticate(request, account=account, admin=True)).id
        if obj.get("recovery_blob") is not None:
            wire.recovery_blob(ctx, obj.get("recovery_blob"))
        wire.check_batch(
            ctx, len(parsed.grants) + len(parsed.items), "grants and items in one bundle"
        )
        state = await ctx.run(store.apply_bundle, account, parsed, writer, ctx.now())
        return {"seq": state.seq, "head": state.head}

    @r.get("/accounts/{account}/recovery")
    async def recovery(account: str) -> dict[str, Any]:
        return {"blob": b64e(await ctx.run(store.recovery_blob, account))}

    @r.get("/accounts/{account}/collections/{collection}/items", response_model=dict[str, Any])
    async def changes(account: str, collection: str, request: Request) -> Response:
        after = wire.int_param(request, "after", 0, 0, 2**62)
        limit = wire.int_param(request, "limit", 1000, 1, ctx.config.max_batch)

        def read(_device: AuthDevice, _nonce: Nonce | None) -> bytes:
            items = store.changes(account, collection, after, limit)
            return dumps({"items": [i.to_json() for i in items]})

        _, body = await ctx.signed(request, read, account=account, scope=collection)
        return JSONBytes(body)

    @r.post("/accounts/{account}/collections/{collection}/items", response_model=dict[str, Any])
    async def put_items(account: str, collection: str, request: Request) -> Response:
        raw_body = await request.body()  # read on the loop; parsed with the write

        def write(device: AuthDevice, nonce: Nonce | None) -> bytes:
            raw = require(ctx.parse_json(raw_body), "items", list)
            wire.check_batch(ctx, len(raw), "items in one write")
            items = [SealedItem.from_json(i) for i in raw]
            seqs = store.put_items(account, collection, items, device.id, nonce)
            return dumps({"seqs": seqs})

        _, body = await ctx.signed(
            request, write, account=account, scope=collection, nonce_in_then=True
        )
        return JSONBytes(body)

    @r.get("/accounts/{account}/grants")
    async def list_grants(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        key = request.query_params.get("key")
        return {
            "grants": [
                {
                    "key": g.key,
                    "epoch": g.epoch,
                    "target_kind": g.target_kind,
                    "target": g.target,
                    "target_generation": g.target_generation,
                    "expires": g.expires,
                }
                for g in await ctx.run(store.grants, account, key)
            ]
        }

    @r.post("/accounts/{account}/reencrypt")
    async def reencrypt(account: str, request: Request) -> dict[str, Any]:
        # A removed device gets as far as the store, which refuses it and audits the refusal.
        device = await ctx.authenticate(request, live=False)
        obj = await ctx.json_body(request)
        reqs = require(obj, "requests", list)
        if not reqs:
            raise FormatError("at least one capsule per request")
        wire.check_batch(ctx, len(reqs), "capsules per request")
        pairs = await ctx.run(wire.capsules, reqs)
        context = obj.get("context", "")
        if not isinstance(context, str):
            raise FormatError("context must be a string")
        await ctx.run(
            store.hit,
            f"reencrypt:{device.account}",
            ctx.config.reencrypt_per_minute,
            60,
            ctx.now(),
            len(pairs),
            name="reencrypt_per_minute",
        )
        kfrags = await ctx.run(store.reencrypt_grants, account, pairs, device, context, ctx.now())
        cfrags = await asyncio.wrap_future(
            ctx.pool.reencrypt(
                device.account, [(kfrags[(k, e)][0], capsule) for k, e, capsule in pairs]
            )
        )
        if ctx.metrics is not None:
            ctx.metrics.reencryptions.inc(len(cfrags))
        return {
            "cfrags": [
                {"cfrag": b64e(c), "generation": kfrags[(k, e)][1]}
                for c, (k, e, _) in zip(cfrags, pairs, strict=True)
            ]
        }

    @r.get("/accounts/{account}/audit")
    async def audit(account: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        q = request.query_params
        outcome = q.get("outcome")
        if outcome not in (None, "allowed", "refused"):
            raise FormatError("outcome is 'allowed' or 'refused'")
        records = await ctx.run(
            store.audit,
            account,
            q.get("prefix", ""),
            after=wire.int_param(request, "after", 0, 0, 2**62),
            limit=wire.int_param(request, "limit", 1000, 1, 1000),
            grantee=q.get("grantee"),
            allowed=None if outcome is None else outcome == "allowed",
        )
        return {"records": [r.__dict__ for r in records]}

    @r.post("/accounts/{account}/pairing", status_code=201)
    async def pairing(account: str, request: Request) -> dict[str, Any]:
        obj = await ctx.json_body(request, limit=PAIRING_BODY)
        pairing_request = wire.pairing_request(account, obj)
        await ctx.run(
            store.hit,
            f"pairings:{ctx.source(request)}",
            ctx.config.pairings_per_source_hour,
            3600,
            ctx.now(),
            name="pairings_per_source_hour",
        )
        code, token = await ctx.run(store.create_pairing, account, pairing_request, ctx.now())
        return {"code": code, "token": token}

    @r.get("/accounts/{account}/pairing/{code}")
    async def pairing_get(account: str, code: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        return {"request": b64e(await ctx.run(store.pairing_request, account, code, ctx.now()))}

    @r.post("/accounts/{account}/pairing/{code}/approve")
    async def pairing_approve(account: str, code: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, admin=True)
        obj = await ctx.json_body(request)
        await ctx.run(
            store.approve_pairing,
            account,
            code,
            require(obj, "device_id", str),
            wire.entries(obj),
            wire.grants(obj),
            ctx.now(),
        )
        return {"ok": True}

    @r.get("/pairing/{code}/status")
    async def pairing_status(code: str, request: Request) -> dict[str, Any]:
        token = request.query_params.get("token", "")
        return {"status": await ctx.run(store.pairing_status, code, token, ctx.now())}

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
        msg_id = await ctx.run(
            store.spool_put,
            account,
            check_collection(channel),
            f"{device.account}/{device.id}",
            body,
            ctx.now(),
            expires,
        )
        return {"id": msg_id}

    @r.get("/accounts/{account}/spool/{channel}")
    async def spool_get(account: str, channel: str, request: Request) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, scope=channel)
        after = wire.int_param(request, "after", 0, 0, 2**62)
        wait = wire.int_param(request, "wait", 0, 0, ctx.config.max_wait)
        limit = wire.int_param(request, "limit", 1000, 1, ctx.config.max_batch)
        msgs = await ctx.wait_for(
            request,
            [f"spool:{account}:{channel}"],
            wait,
            lambda: store.spool_get(account, channel, after, limit, ctx.now()),
        )
        return {
            "messages": [
                {"id": m.id, "sender": m.sender, "body": b64e(m.body), "created": m.created}
                for m in msgs
            ]
        }

    @r.delete("/accounts/{account}/spool/{channel}/{message_id}")
    async def spool_delete(
        account: str, channel: str, message_id: int, request: Request
    ) -> dict[str, Any]:
        await ctx.authenticate(request, account=account, scope=channel)
        if not await ctx.run(store.spool_delete, account, channel, message_id):
            raise NotFound("no such message")
        return {"ok": True}

    return r


def create_app(
    ctx: ServiceContext,
    routers: Iterable[APIRouter] = (),
    *,
    channels: Mapping[str, Channel] | None = None,
) -> FastAPI:
    """The ASGI app: core routes plus any adapter routers, metrics and health; ``channels``
    are the spool channels the adapters declared (none: the generic spool route takes no
    posts)."""
    from anyio import to_thread

    cpu = ctx.pool
    metrics = ctx.metrics = Metrics(ctx.notifier, cpu)
    if ctx.push is not None:
        metrics.watch_push(ctx.push)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = ctx.db_threads
        from .db import listen_conninfo

        conninfo = listen_conninfo(ctx.store.engine)
        if conninfo is not None and ctx.listener is None:
            ctx.listener = PostgresListener(conninfo, ctx.notifier)
            ctx.listener.start()
        # workers start in the background: serving does not wait for them
        warm = asyncio.get_running_loop().run_in_executor(None, cpu.start)
        if ctx.push is not None:  # the VAPID key exists from the first start on
            await ctx.run(ctx.push.vapid)
        try:
            yield
        finally:
            ctx.notifier.close()
            if ctx.push is not None:
                ctx.push.close()
            if ctx.listener is not None:
                ctx.listener.stop()
            if warm.done():
                warm.exception()
            cpu.close()
            ctx.close_threads()

    app = FastAPI(title="Keystead", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.include_router(core_router(ctx, channels or {}))
    app.include_router(push_router(ctx))
    for router in routers:
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(KeysteadError)
    async def _keystead_error(request: Request, exc: KeysteadError) -> JSONResponse:
        if isinstance(exc, (RateLimited, QuotaExceeded)):
            metrics.refusals.labels(exc.limit or exc.code).inc()
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "message": "malformed request"}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(
            {"error": code, "message": message},
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return error_response(Unavailable())

    for kind in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(kind, _database_down)

    async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
        # The client hung up before its body was all there: nothing was read, nothing is
        # stored, and nobody is left to answer. Counted and logged as 499 (nginx's "client
        # closed request"), not as a 500 with a traceback.
        return JSONResponse({"error": "client_closed", "message": "the client went away"}, 499)

    app.add_exception_handler(ClientDisconnect, _client_gone)

    app.add_middleware(BodyLimit, limit=ctx.config.max_body)
    app.add_middleware(AccessLog, metrics=metrics)
    app.add_middleware(ProtocolVersion)
    return app
