"""The HTTP client for a Keystead service: signs requests and maps errors back to types.

It knows the wire, not the meaning: :mod:`keystead.core.device` builds the
protocol on top of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .crypto import SigningKey
from .errors import (
    ERROR_CODES,
    KeysteadError,
    NetworkError,
    QuotaExceeded,
    RateLimited,
    ServiceError,
)
from .requests import origin_of, sign_request

if TYPE_CHECKING:
    import httpx

__all__ = ["ServiceClient", "Signer"]

_ERRORS: dict[str, type[KeysteadError]] = ERROR_CODES  # the service's own table


class Signer:
    """Who signs: an account name, a device id and that device's signing key."""

    def __init__(self, account: str, device_id: str, key: SigningKey) -> None:
        self.account, self.device_id, self.key = account, device_id, key


def path(*parts: str) -> str:
    """Join URL path segments, quoting each."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


class ServiceClient:
    """One service, optionally signing as one device."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: Signer | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self._origin = origin_of(self.base_url)
        self.signer = signer
        self._clock = clock
        # Idle connections are dropped well before the server's keep-alive (5 s) closes them,
        # so a request never races the server's close on a reused connection.
        # A plain-http service (loopback, tests) needs no TLS context: building one loads the
        # CA bundle, about 60 ms of every command. https URLs keep full verification.
        tls = self.base_url.startswith("https:")
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=2.0),
            verify=tls,
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url_path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        signed: bool = True,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON answer or raises a typed error."""
        target = "/v1" + url_path
        # No "?" when every parameter is None: the service would sign a path without it.
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        if query:
            target += "?" + query
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        extra = headers
        headers = {"content-type": "application/json"} if body is not None else {}
        headers["keystead-protocol"] = "2"  # the service refuses another version by name
        headers.update(extra or {})
        if signed and self.signer is None:
            raise ValueError("this client has no device to sign with")
        import httpx

        try:
            try:
                resp = self._send(method, target, content, headers, timeout, signed)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # A keep-alive connection the service closed as the request went out (a
                # worker replaced in a reload, a stop): no answer, nothing done. A read is
                # sent once more, on a new connection and signed anew (a new nonce); a
                # write never is, as the first may have been applied.
                if method not in ("GET", "HEAD"):
                    raise
                resp = self._send(method, target, content, headers, timeout, signed)
        except httpx.TransportError as e:
            raise NetworkError(f"cannot reach the service at {self.base_url}") from e
        if resp.status_code >= 400:
            raise _error(resp)
        return resp.json() if resp.content else None

    def _send(
        self,
        method: str,
        target: str,
        content: bytes,
        headers: dict[str, str],
        timeout: float | None,
        signed: bool,
    ) -> Any:
        """One try: signed now (its own nonce and time) when ``signed``, then sent."""
        import httpx

        if signed and self.signer is not None:
            headers = {
                **headers,
                **sign_request(
                    self.signer.key,
                    account=self.signer.account,
                    device=self.signer.device_id,
                    method=method,
                    origin=self._origin,
                    path=target,
                    body=content,
                    time=int(self._clock()),
                ),
            }
        return self._http.request(
            method,
            target,
            content=content,
            headers=headers,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )

    def get(self, url_path: str, **kw: Any) -> Any:
        return self.request("GET", url_path, **kw)

    def post(self, url_path: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", url_path, body=body, **kw)

    def put(self, url_path: str, body: Any, **kw: Any) -> Any:
        return self.request("PUT", url_path, body=body, **kw)

    def delete(self, url_path: str, **kw: Any) -> Any:
        return self.request("DELETE", url_path, **kw)


def _error(resp: httpx.Response) -> KeysteadError:
    hint: str | None = None
    try:
        obj = resp.json()
        code, message = str(obj.get("error", "")), str(obj.get("message", ""))
        hint = str(obj["hint"]) if isinstance(obj.get("hint"), str) else None
        limit = str(obj.get("limit", ""))
    except (ValueError, AttributeError):
        # Not Keystead's JSON (a proxy's error page): its text is not shown to the person.
        code, message, limit = "", resp.reason_phrase or "no JSON error", ""
    kind = _ERRORS.get(code)
    if kind is RateLimited:
        after = resp.headers.get("retry-after", "")
        return RateLimited(
            message, limit=limit, hint=hint, retry_after=int(after) if after.isdigit() else None
        )
    if kind is QuotaExceeded:
        return QuotaExceeded(message, limit=limit, hint=hint)
    if kind is not None and not issubclass(kind, ServiceError):
        err = kind(message)
        err.hint = hint
        return err
    if kind is not None:
        return kind(message, resp.status_code, code, hint=hint)
    return ServiceError(
        f"service error {resp.status_code}: {message}", resp.status_code, code, hint=hint
    )
