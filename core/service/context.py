"""What a route (core or adapter) needs: the store, the clock and request authentication."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from .._encoding import parse_json_object
from ..errors import DeviceRemoved, Forbidden, FormatError
from ..requests import MAX_SKEW, parse_auth
from .store import AuthDevice, Store

__all__ = ["ServiceContext"]


@dataclass
class ServiceContext:
    """Shared by every route; holds no per-request state (so processes can scale out)."""

    store: Store
    clock: Callable[[], float] = field(default=time.time)
    max_skew: int = MAX_SKEW

    def now(self) -> int:
        return int(self.clock())

    async def json_body(self, request: Request) -> dict[str, Any]:
        return parse_json_object(await request.body(), what="request body")

    async def authenticate(self, request: Request, *, account: str | None = None,
                           scope: str | None = None, admin: bool = False,
                           live: bool = True) -> AuthDevice:
        """Verify the request's signature and that its device is live (and may do this).

        ``live=False`` lets a removed device through, for routes whose store call refuses
        it and records the refusal (re-encryption's audit trail)."""
        auth = parse_auth({k.lower(): v for k, v in request.headers.items()})
        if auth is None:
            raise Forbidden("this request must be signed by a device")
        device = self.store.device(auth.account, auth.device)
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.scope.get("query_string"):
            path += "?" + request.scope["query_string"].decode("latin-1")
        # The origin this service was reached at, as the client named it (Host, and the
        # scheme uvicorn reports, which honours X-Forwarded-Proto from a trusted proxy).
        origin = f"{request.url.scheme}://{request.headers.get('host', '')}"
        auth.verify(device.signing_key, method=request.method, origin=origin, path=path,
                    body=await request.body(), now=self.now(), max_skew=self.max_skew)
        if live and not device.live:
            raise DeviceRemoved("this device has been removed from its account")
        self.store.use_nonce(f"{auth.account}/{auth.device}", auth.nonce, self.now(),
                             self.max_skew)
        if account is not None and device.account != account:
            raise Forbidden("this device belongs to another account")
        if scope is not None and scope not in device.scopes:
            raise Forbidden(f"this device does not have the {scope!r} scope")
        if admin and device.role != "admin":
            raise Forbidden("only an admin device may do this")
        return device


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def require(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"field {key!r} must be {kind.__name__}")
    return value
