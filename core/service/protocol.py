"""Every request names the protocol version its client speaks; another version is refused.

Version 2 reads no version 1 data and a version 1 client cannot read version 2 answers, so
instead of failing on whichever field first differs, the service answers one line that names
both versions. A client that sends no ``Keystead-Protocol`` header is a version 1 client.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HEADER", "PROTOCOL_VERSION", "ProtocolVersion"]

PROTOCOL_VERSION = 2
HEADER = "keystead-protocol"
_EXEMPT = ("/v1/health", "/v1/ready", "/metrics", "/openapi.json", "/app/")


class ProtocolVersion:
    """Refuse requests to the API from a client of another protocol version (400)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path.startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", [])).get(HEADER.encode(), b"1").decode("latin-1")
        if sent.strip() == str(PROTOCOL_VERSION):
            await self.app(scope, receive, send)
            return
        message = (
            f"this service speaks Keystead protocol version {PROTOCOL_VERSION}; the "
            f"client speaks version {sent.strip()[:8] or '?'}: upgrade the client"
        )
        resp = JSONResponse({"error": "unsupported_version", "message": message}, 400)
        await resp(scope, receive, send)
