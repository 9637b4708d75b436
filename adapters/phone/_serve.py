"""Serving the phone app at ``/app/`` (docs/PHONE.md §2).

- Only over HTTPS, or over plain http to a loopback address (the only http origin a browser
  lets run service workers, WebCrypto and Web Push); anything else is a short 403 saying
  HTTPS is required, so nobody on a home network runs keys code that anyone on the path
  could have changed.
- Strict headers: a Content-Security-Policy allowing only this origin's scripts (and their
  WebAssembly), connections to this origin only, no framing.
- Caching a phone can rely on: ``index.html``, ``sw.js`` and the manifest are revalidated
  every time (an update reaches the phone on its next start); files whose names carry a
  content hash are cached for a year, immutable. Every file has a strong ETag.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from keystead.core.address import is_loopback_host
from keystead.core.capabilities import ServiceCapabilities

__all__ = ["CSP", "app_router", "content_type", "default_app_dir", "is_hashed"]

CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; "
    "img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'; worker-src 'self'; manifest-src 'self'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self)",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}
_ALWAYS_REVALIDATE = {"index.html", "sw.js", "manifest.webmanifest"}
_HASHED = re.compile(r"^[^/]+\.(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{8,64}\.[A-Za-z0-9]+$")
_IMMUTABLE = "public, max-age=31536000, immutable"
_MAX_FILE = 16 * 1024 * 1024
HTTPS_REQUIRED = (
    "the Keystead app needs HTTPS: run keystead serve with --tls-cert/--tls-key or "
    "--tls-self-signed, or put nginx in front terminating TLS (X-Forwarded-Proto: https); "
    "over plain http it is served only on this machine (localhost)"
)


def default_app_dir() -> Path:
    """The built app next to this module (resolved: an editable install links the module,
    the app is rebuilt in the source tree)."""
    return Path(__file__).resolve().parent / "app"


def content_type(name: str) -> str:
    return _TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def is_hashed(name: str) -> bool:
    """``app.3f9a1c2e.js``: a content hash (8+ characters, at least one digit) in the name."""
    return bool(_HASHED.match(Path(name).name))


def cache_control(name: str) -> str:
    if Path(name).name in _ALWAYS_REVALIDATE or not is_hashed(name):
        return "no-cache"
    return _IMMUTABLE


@dataclass(frozen=True)
class _File:
    body: bytes
    etag: str
    mtime_ns: int
    size: int


def _loopback_name(host: str) -> bool:
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return is_loopback_host(host)


def secure_enough(request: Request) -> bool:
    """HTTPS (directly, or from a proxy uvicorn trusts), or plain http made to a loopback
    address: the connection's local end is loopback and the Host names a loopback host."""
    if request.url.scheme == "https":
        return True
    server = request.scope.get("server")
    local = server[0] if server else ""
    return (
        bool(local)
        and _loopback_name(str(local))
        and _loopback_name(request.headers.get("host", ""))
    )


def _refuse(request: Request) -> Response:
    headers = {"Cache-Control": "no-store", **_SECURITY_HEADERS}
    if "text/html" in request.headers.get("accept", ""):
        page = (
            "<!doctype html><meta charset=utf-8><meta name=viewport "
            'content="width=device-width"><title>HTTPS required</title>'
            "<h1>HTTPS required</h1><p>" + HTTPS_REQUIRED + "</p>"
        )
        return HTMLResponse(page, 403, headers=headers)
    return JSONResponse({"error": "forbidden", "message": HTTPS_REQUIRED}, 403, headers=headers)


def _not_found() -> JSONResponse:
    return JSONResponse({"error": "not_found", "message": "no such file in the app"}, 404)


def _safe_parts(rel: str) -> list[str] | None:
    if "\\" in rel or "\x00" in rel or len(rel) > 512:
        return None
    parts = [p for p in rel.split("/") if p]
    if any(p.startswith(".") for p in parts):  # .., hidden files and folders
        return None
    return parts


def app_router(caps: ServiceCapabilities) -> APIRouter:
    """``GET /app`` (redirect), ``GET /app/`` and ``GET /app/FILE``."""
    r = APIRouter()
    configured = caps.config.app_dir
    root = Path(configured).resolve() if configured else default_app_dir()
    cache: dict[Path, _File] = {}

    def load(file: Path) -> _File | None:
        try:
            st = file.stat()
        except OSError:
            return None
        known = cache.get(file)
        if known is not None and (known.mtime_ns, known.size) == (st.st_mtime_ns, st.st_size):
            return known
        if st.st_size > _MAX_FILE:
            return None
        try:
            body = file.read_bytes()
        except OSError:
            return None
        found = _File(
            body, '"' + hashlib.sha256(body).hexdigest() + '"', st.st_mtime_ns, st.st_size
        )
        cache[file] = found
        return found

    @r.api_route("/app", methods=["GET", "HEAD"], include_in_schema=False)
    async def app_root(request: Request) -> Response:
        if not secure_enough(request):
            return _refuse(request)
        return RedirectResponse("/app/", 308)

    @r.api_route("/app/{rel:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def app_file(rel: str, request: Request) -> Response:
        if not secure_enough(request):
            return _refuse(request)
        parts = _safe_parts(rel)
        if parts is None:
            return _not_found()
        file = root.joinpath(*parts) if parts else root / "index.html"
        if file.is_dir():
            return _not_found()
        try:
            file.resolve().relative_to(root)
        except (ValueError, OSError):
            return _not_found()  # a link out of the app's folder
        found = await caps.run(load, file)
        if found is None:
            return _not_found()
        name = file.name
        headers = {
            **_SECURITY_HEADERS,
            "Cache-Control": cache_control(name),
            "ETag": found.etag,
        }
        if name == "sw.js":
            headers["Service-Worker-Allowed"] = "/app/"
        wanted = request.headers.get("if-none-match", "")
        if found.etag in {t.strip() for t in wanted.split(",")} or wanted.strip() == "*":
            return Response(status_code=304, headers=headers)
        body = b"" if request.method == "HEAD" else found.body
        headers["Content-Length"] = str(found.size)
        return Response(body, 200, headers=headers, media_type=content_type(name))

    return r
