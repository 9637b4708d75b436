"""Helpers for the core's unit tests (a uniquely named module: no ``from conftest import``).

The in-process service is the real FastAPI app driven through httpx's own
``ASGITransport``; :class:`SyncASGITransport` only runs it from synchronous code, so the
real ``Device``/``ServiceClient`` talk to it exactly as they talk to a process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from keystead.core import account as acct
from keystead.core.device import Device
from keystead.core.home import Home
from keystead.core.service import ServiceConfig, ServiceContext, Store, create_app

PASSPHRASE = "unit test passphrase"
BASE_URL = "http://keystead.test"
START = 1_700_000_000.0


class Clock:
    """A clock tests move by hand (instead of sleeping)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGITransport, run to completion per request so sync clients can use it."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def run() -> tuple[int, httpx.Headers, bytes]:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            resp = await self._inner.handle_async_request(req)
            content = await resp.aread()
            await resp.aclose()
            return resp.status_code, resp.headers, content

        status, headers, content = asyncio.run(run())
        return httpx.Response(status, headers=headers, content=content, request=request)


class TamperingTransport(httpx.BaseTransport):
    """An evil service: passes requests to the real one and lets a test rewrite answers."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.rewrite: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None
        self.down = False
        """Unreachable: requests fail before the service sees them (a rewrite that raises
        is an answer lost after the service acted)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("service unreachable", request=request)
        resp = self.inner.handle_request(request)
        if self.rewrite is not None:
            resp.read()
            return self.rewrite(request, resp)
        return resp


@dataclass
class InProcessService:
    """The real app on a store, with a hand-moved clock and a transport for clients."""

    store: Store
    clock: Clock
    tmp: Path
    ctx: ServiceContext = field(init=False)
    transport: TamperingTransport = field(init=False)
    app: Any = field(init=False)
    url: str = BASE_URL

    def __post_init__(self) -> None:
        # CPU work in one thread: no worker processes per test (the pool is tested on its own)
        self.ctx = ServiceContext(self.store, clock=self.clock, config=ServiceConfig(cpu_workers=0))
        self.app = create_app(self.ctx)
        self.transport = TamperingTransport(SyncASGITransport(self.app))

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, transport=self.transport, headers={"keystead-protocol": "2"}
        )

    def create(
        self,
        name: str = "alice",
        device: str = "laptop",
        collections: tuple[str, ...] = ("notes", "passwords"),
    ) -> tuple[Device, str]:
        """A new account (admin device in its own home); returns it and its recovery key."""
        home = Home(self.tmp / f"{name}-{device}")
        return acct.create_account(
            home,
            self.url,
            name,
            device,
            PASSPHRASE,
            collections=collections,
            transport=self.transport,
            clock=self.clock,
        )

    def join(
        self, admin: Device, name: str, *, role: str = "member", scopes: list[str] | None = None
    ) -> Device:
        """The real pairing flow, in process: start, approve on ``admin``, finish."""
        home = Home(self.tmp / f"{admin.account}-{name}")
        ticket = acct.start_join(
            home,
            self.url,
            admin.account,
            name,
            PASSPHRASE,
            transport=self.transport,
            clock=self.clock,
        )
        details = acct.pairing_details(admin, ticket.code)
        assert details.sas == ticket.sas
        acct.approve_device(admin, details, role, scopes)
        dev = acct.wait_for_approval(
            home, PASSPHRASE, 0, transport=self.transport, clock=self.clock
        )
        assert dev is not None
        return dev

    def open(self, home: Home) -> Device:
        return Device.open(home, PASSPHRASE, transport=self.transport, clock=self.clock)
