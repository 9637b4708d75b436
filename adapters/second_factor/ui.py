"""``keystead confirm ui``: a local page to answer confirmation prompts.

It listens on 127.0.0.1 only, and still assumes hostile neighbours: any web
page the person visits can send requests to localhost, and any local process can
fetch ``GET /``. So every API call needs a random token that reaches the person
only through the terminal: the URL printed there carries it in its fragment
(``#t=TOKEN``, which a browser never sends to a server); the served page holds no
token, reads it from its own address and then removes it from there. The Host header must
name this server exactly (no DNS rebinding), cross-site fetches are refused,
and the page may not be framed (no clickjacking onto "Approve").
"""

from __future__ import annotations

import hmac
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from keystead.core.errors import FormatError, KeysteadError, NotFound
from pydantic import BaseModel, ConfigDict

from ._confirm_protocol import RequestExpired
from ._source import PromptSource

__all__ = ["UiServer", "create_app"]

TOKEN_HEADER = "X-Keystead-Token"
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class _ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: int | None


class _DenyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    report: bool


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _asset(name: str) -> str:
    return (resources.files(__package__) / "ui" / name).read_text("utf-8")


def create_app(
    source: PromptSource, *, port: int, token: str, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The ASGI app for a server on 127.0.0.1:``port``, guarded by ``token``."""
    allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    allowed_origins = {f"http://{h}" for h in allowed_hosts}
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await _check(request) or await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    async def _check(request: Request) -> Response | None:
        if request.headers.get("host") not in allowed_hosts:
            return _error(403, "bad_host", "this server answers only to 127.0.0.1 and localhost")
        origin = request.headers.get("origin")
        if origin is not None and origin not in allowed_origins:
            return _error(403, "cross_origin", "requests from other origins are refused")
        is_api = request.url.path.startswith("/api/")
        site = request.headers.get("sec-fetch-site", "same-origin")
        navigating = request.headers.get("sec-fetch-mode", "navigate") == "navigate"
        if site not in ("same-origin", "none") and (is_api or not navigating):
            return _error(403, "cross_site", "requests from other sites are refused")
        if not is_api:
            return None
        given = request.headers.get(TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(403, "bad_token", "missing or wrong page token")
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return _error(415, "bad_content_type", "send application/json")
        return None

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return _error(404, "not_found", "no such file")
        return Response(_asset(name), media_type=_STATIC[name])

    @app.get("/api/pending")
    def pending() -> dict[str, Any]:
        now = int(clock())
        prompts = [
            {
                "id": p.request_id,
                "rp": p.rp,
                "message": p.message,
                "created": p.created,
                "expires": p.expires,
                "choices": list(p.choices),
            }
            for p in source.list_pending()
            if p.expires > now
        ]
        return {"v": 1, "now": now, "prompts": prompts}

    def _answer(action: Callable[[], None]) -> Response:
        try:
            action()
        except NotFound:
            return _error(404, "not_found", "no such pending prompt")
        except RequestExpired:
            return _error(410, "expired", "the request has expired")
        except FormatError as e:
            return _error(400, "bad_request", str(e))
        except KeysteadError as e:  # the boundary: one line for the person, 4xx for the page
            return _error(409, "refused", str(e))
        return JSONResponse({"ok": True})

    @app.post("/api/prompts/{request_id}/approve")
    def approve(request_id: str, body: _ApproveBody) -> Response:
        return _answer(lambda: source.approve(request_id, body.number))

    @app.post("/api/prompts/{request_id}/deny")
    def deny(request_id: str, body: _DenyBody) -> Response:
        return _answer(lambda: source.deny(request_id, body.report))

    return app


class UiServer:
    """The UI on a loopback socket; ``port=0`` picks a free port (tests read :attr:`url`)."""

    def __init__(
        self,
        source: PromptSource,
        *,
        port: int = 0,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(("127.0.0.1", port))
            self._sock.listen(64)
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        self.token = token or secrets.token_urlsafe(32)
        app = create_app(source, port=self.port, token=self.token, clock=clock)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL (no token: what the API paths hang off)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def open_url(self) -> str:
        """What the person opens: the token travels in the fragment, never to a server."""
        return f"{self.url}#t={self.token}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (what the CLI command does)."""
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._sock.close()

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the confirmation UI did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> UiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
