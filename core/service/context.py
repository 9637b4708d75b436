"""What a route (core or adapter) needs: the store, the clock, request authentication,
the thread pool for database work, the notifier for long polls and the CPU pool."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request, Response

from .._encoding import parse_json_object
from ..errors import Forbidden, FormatError, QuotaExceeded
from ..requests import MAX_SKEW, parse_auth
from ._store_base import Nonce
from .config import ServiceConfig
from .notify import Notifier, PostgresListener
from .observe import Metrics
from .push import PushSender
from .store import AuthDevice, Store
from .workers import CpuPool

__all__ = ["ServiceContext"]

T = TypeVar("T")
_BIG_BODY = 64 * 1024  # bodies over this are parsed in a worker thread


@dataclass
class ServiceContext:
    """Shared by every route; holds no state another process would need (so processes can
    scale out): what must be shared lives in the database."""

    store: Store
    clock: Callable[[], float] = field(default=time.time)
    max_skew: int = MAX_SKEW
    config: ServiceConfig = field(default_factory=ServiceConfig)
    notifier: Notifier = field(default_factory=Notifier)
    cpu: CpuPool | None = None
    metrics: Metrics | None = None  # set by create_app
    listener: PostgresListener | None = None  # started by the app on PostgreSQL
    push: PushSender | None = None  # Web Push wake-ups (core/service/push.py)
    _threads: ThreadPoolExecutor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cpu is None:
            self.cpu = CpuPool(
                self.config.cpu_workers, self.config.cpu_chunk, self.config.cpu_queue
            )
        self.store.config = self.config
        if self.notifier.publish not in self.store.listeners:
            self.store.listeners.append(self.notifier.publish)
        if self.push is None:
            self.push = PushSender(self.store, self.config, self.clock)
        if self.push.on_commit not in self.store.listeners:
            self.store.listeners.append(self.push.on_commit)

    @property
    def pool(self) -> CpuPool:
        if self.cpu is None:  # pragma: no cover - set in __post_init__
            raise RuntimeError("no CPU pool")
        return self.cpu

    @property
    def db_threads(self) -> int:
        """How many threads run database work (``db_threads``, resolved for the database)."""
        return self.config.threads_for(self.store.engine.dialect.name)

    def now(self) -> int:
        return int(self.clock())

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run blocking (database) work in the thread pool, off the event loop.

        The pool is a plain executor of :attr:`db_threads` threads: handing work to it through
        ``run_in_executor`` costs a fraction of anyio's ``to_thread`` (capacity limiter,
        cancel scopes, run-variables), which was a tenth of a signed read."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.db_threads, thread_name_prefix="keystead-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(fn, *args, **kw))

    def close_threads(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None

    async def json_body(self, request: Request, *, limit: int | None = None) -> dict[str, Any]:
        body = await request.body()
        if limit is not None and len(body) > limit:
            raise QuotaExceeded(f"request body over {limit} bytes for this route", limit="max_body")
        if len(body) > _BIG_BODY:
            return await self.run(parse_json_object, body, what="request body")
        return parse_json_object(body, what="request body")

    @staticmethod
    def parse_json(body: bytes) -> dict[str, Any]:
        """A request body, parsed where the caller runs (a worker thread)."""
        return parse_json_object(body, what="request body")

    def source(self, request: Request) -> str:
        """The client's address; behind a trusted local proxy, the one it forwarded."""
        host = request.client.host if request.client else "unknown"
        fwd = request.headers.get("x-forwarded-for")
        if fwd and self.config.trust_forwarded_for and _loopback(host):
            host = fwd.rsplit(",", 1)[-1].strip() or host
        return host

    async def authenticate(
        self,
        request: Request,
        *,
        account: str | None = None,
        scope: str | None = None,
        admin: bool = False,
        live: bool = True,
    ) -> AuthDevice:
        """Verify the request's signature and that its device is live (and may do this).

        ``live=False`` lets a removed device through, for routes whose store call refuses
        it and records the refusal (re-encryption's audit trail)."""
        device, _ = await self.signed(request, account=account, scope=scope, admin=admin, live=live)
        return device

    async def signed(
        self,
        request: Request,
        then: Callable[[AuthDevice, Nonce | None], T] | None = None,
        *,
        account: str | None = None,
        scope: str | None = None,
        admin: bool = False,
        live: bool = True,
        nonce_in_then: bool = False,
    ) -> tuple[AuthDevice, T | None]:
        """:meth:`authenticate`, then ``then(device, nonce)`` (the route's database work) in
        the same trip to the thread pool. With ``nonce_in_then``, ``then`` is a write that
        records the request's nonce in its own transaction (``Store.authenticate``)."""
        scope_ = request.scope
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope_["headers"]}
        auth = parse_auth(headers)
        if auth is None:
            raise Forbidden("this request must be signed by a device")
        path = scope_.get("raw_path", request.url.path.encode()).decode("latin-1")
        if scope_.get("query_string"):
            path += "?" + scope_["query_string"].decode("latin-1")
        # The origin this service was reached at, as the client named it (Host, and the
        # scheme uvicorn reports, which honours X-Forwarded-Proto from a trusted proxy).
        origin = f"{scope_.get('scheme', 'http')}://{headers.get('host', '')}"
        return await self.run(
            self.store.authenticate,
            auth,
            method=request.method,
            origin=origin,
            path=path,
            body=await request.body(),
            now=self.now(),
            max_skew=self.max_skew,
            live=live,
            account=account,
            scope=scope,
            admin=admin,
            then=then,
            nonce_in_then=nonce_in_then,
        )

    async def wait_for(
        self,
        request: Request,
        topics: Iterable[str],
        wait: float,
        check: Callable[[], T],
        ready: Callable[[T], bool] = bool,
    ) -> T:
        """A long poll: ``check()`` (run in the thread pool) until ``ready`` says its result
        is worth answering, a post on one of ``topics`` waking it in between. Answers with
        the last result at the deadline, at a stop, or when the client has gone away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self.config.max_wait)
        topics = tuple(topics)
        while True:
            waiter = self.notifier.subscribe(topics)  # before the read: no lost wake-up
            try:
                result = await self.run(check)
                left = deadline - loop.time()
                if ready(result) or left <= 0 or self.notifier.closed:
                    return result
                why = await self.notifier.wait(waiter, left, lambda: _gone(request))
                if why in ("closed", "gone"):
                    return result if why == "gone" else await self.run(check)
            finally:
                self.notifier.unsubscribe(waiter)


async def _gone(request: Request) -> None:
    """Returns when the client disconnects (the body was read already)."""
    while True:
        msg = await request.receive()
        if msg["type"] == "http.disconnect":
            return


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JSONBytes(Response):
    """An answer already serialized (by :func:`dumps`, in a worker thread)."""

    media_type = "application/json"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def require(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"field {key!r} must be {kind.__name__}")
    return value
