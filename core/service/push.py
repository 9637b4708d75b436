"""Web Push (RFC 8030, 8291, 8292): waking a device whose app is closed.

A device registers one push subscription (its browser's endpoint and keys). After the
commit of a message into spool channel ``C`` of account ``A``, every live device of ``A``
with scope ``C`` that has a subscription gets a push whose payload is only the wake-up
``{"t":"wake"}``, encrypted to the subscription (aes128gcm) and signed with the service's
VAPID key. Like a long poll's notification, a push is a hint: the woken device reads the
spool itself, over its signed requests. The service never puts a prompt in a push.

The VAPID key pair is made once and kept in the database, so every service process signs
with the same key the devices subscribed with. Pushes leave from a small thread pool after
the commit: a slow or dead push service never delays the request that posted. The service
only ever sends requests to hosts in ``push_allowed_hosts`` (no redirects followed): a
subscription naming another host is refused when it is registered.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..address import is_loopback_host
from ..errors import FormatError
from .config import ServiceConfig
from .store import PushTarget, Store

if TYPE_CHECKING:
    from .context import ServiceContext

__all__ = [
    "WAKE_PAYLOAD",
    "PushSender",
    "b64url",
    "b64url_decode",
    "check_endpoint",
    "host_allowed",
    "parse_subscription",
    "push_router",
]

log = logging.getLogger("keystead.service")

WAKE_PAYLOAD = b'{"t":"wake"}'
"""All a push ever carries."""
VAPID_KEY_NAME = "vapid"
TOPIC = "keystead-wake"
MAX_ENDPOINT = 2048
MAX_PENDING = 10_000
SEND_TIMEOUT = 10.0


# ------------------------------------------------------------------ encodings
def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: object, what: str) -> bytes:
    import base64
    import binascii

    if not isinstance(text, str) or not text or len(text) > 200:
        raise FormatError(f"{what} must be a base64url string")
    text = text[: len(text) - 2] + text[-2:].rstrip("=")  # padding, if any, is accepted
    if not text or any(c not in _B64URL for c in text):
        raise FormatError(f"{what} must be base64url (A-Z a-z 0-9 - _, no '+' or '/')")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not valid base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# ------------------------------------------------------------------ validation
def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        p = pattern.lower().strip()
        if p.startswith("*."):
            if host.endswith(p[1:]) and len(host) > len(p) - 1:
                return True
        elif host == p:
            return True
    return False


def check_endpoint(endpoint: object, config: ServiceConfig) -> str:
    """The endpoint, if the service may send to it; else ``FormatError`` naming the reason."""
    if not isinstance(endpoint, str) or not endpoint:
        raise FormatError("endpoint must be a URL string")
    if len(endpoint) > MAX_ENDPOINT:
        raise FormatError(f"endpoint longer than {MAX_ENDPOINT} characters")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in endpoint):
        raise FormatError("endpoint must be a URL of printable ASCII without spaces")
    try:
        url = urlsplit(endpoint)
        host = (url.hostname or "").lower()
        port = url.port
    except ValueError:
        raise FormatError("endpoint is not a valid URL") from None
    if url.username is not None or url.password is not None:
        raise FormatError("endpoint must not carry a user name or password")
    if not host:
        raise FormatError("endpoint has no host")
    if url.scheme == "https":
        if port not in (None, 443) and not is_loopback_host(host):
            raise FormatError("endpoint must use the https port 443")
    elif url.scheme == "http":
        if not (config.push_allow_http_loopback and is_loopback_host(host)):
            raise FormatError("endpoint must be an https:// URL")
    else:
        raise FormatError("endpoint must be an https:// URL")
    if not host_allowed(host, config.push_allowed_hosts):
        raise FormatError(
            f"push endpoint host {host!r} is not allowed by the service's push_allowed_hosts "
            "option",
            hint="the operator can add it to push_allowed_hosts",
        )
    return endpoint


def _check_p256dh(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    if len(raw) != 65 or raw[0] != 4:
        raise FormatError("keys.p256dh must be a 65-byte uncompressed P-256 point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise FormatError("keys.p256dh is not a point on P-256") from None
    return raw


def parse_subscription(obj: dict[str, Any], config: ServiceConfig) -> tuple[str, bytes, bytes]:
    """``{"endpoint", "keys": {"p256dh", "auth"}}`` checked: (endpoint, p256dh, auth)."""
    if set(obj) != {"endpoint", "keys"}:
        raise FormatError('expected exactly {"endpoint", "keys"}')
    keys = obj["keys"]
    if not isinstance(keys, dict) or set(keys) != {"p256dh", "auth"}:
        raise FormatError('keys must be exactly {"p256dh", "auth"}')
    endpoint = check_endpoint(obj["endpoint"], config)
    p256dh = _check_p256dh(b64url_decode(keys["p256dh"], "keys.p256dh"))
    auth = b64url_decode(keys["auth"], "keys.auth")
    if len(auth) != 16:
        raise FormatError("keys.auth must be 16 bytes")
    return endpoint, p256dh, auth


# ------------------------------------------------------------------ sending
def _new_vapid_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class PushSender:
    """One per service process: the VAPID key and the threads that send pushes."""

    def __init__(self, store: Store, config: ServiceConfig, clock: Any) -> None:
        self.store, self.config, self.clock = store, config, clock
        self._lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()
        self._executor: cf.ThreadPoolExecutor | None = None
        self._vapid: Any = None
        self._public: bytes = b""
        self.closed = False
        self.sent = 0  # pushes accepted by a push service, for tests and metrics
        self.failed = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- the key
    def vapid(self) -> Any:
        """The py_vapid signer of the service's key (made and stored at first use)."""
        if self._vapid is None:
            from cryptography.hazmat.primitives import serialization
            from py_vapid import Vapid02

            der = self.store.service_key(VAPID_KEY_NAME, _new_vapid_key, int(self.clock()))
            key = serialization.load_der_private_key(der, password=None)
            vapid = Vapid02(key)
            self._public = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            self._vapid = vapid
        return self._vapid

    def public_key(self) -> bytes:
        """The 65-byte uncompressed VAPID public key."""
        self.vapid()
        return self._public

    # -- wake-ups
    def on_commit(self, topics: list[str]) -> None:
        """A store listener: each spool topic queues one wake-up (merged while queued)."""
        if self.closed:
            return
        for topic in topics:
            kind, _, rest = topic.partition(":")
            if kind != "spool":
                continue
            account, _, channel = rest.rpartition(":")
            if not account or not channel:
                continue
            key = (account, channel)
            with self._lock:
                if key in self._pending or len(self._pending) >= MAX_PENDING:
                    continue
                self._pending.add(key)
                if self._executor is None:
                    self._executor = cf.ThreadPoolExecutor(
                        max(1, self.config.push_threads), thread_name_prefix="keystead-push"
                    )
                executor = self._executor
            try:
                executor.submit(self._wake, account, channel)
            except RuntimeError:  # shut down meanwhile
                with self._lock:
                    self._pending.discard(key)

    def _wake(self, account: str, channel: str) -> None:
        with self._lock:
            self._pending.discard((account, channel))
        try:
            targets = self.store.push_targets(account, channel)
        except Exception as e:  # the database is down: the long poll still sees the message
            log.warning("push: cannot read subscriptions of %s: %s", account, _line(e))
            return
        for target in targets:
            self.send(target)

    def send(self, target: PushTarget) -> bool:
        """Send one wake-up; a subscription its push service calls gone is deleted."""
        import requests
        from pywebpush import WebPushException, webpush

        try:
            check_endpoint(target.endpoint, self.config)
        except FormatError as e:
            log.warning("push: not sending to %s/%s: %s", target.account, target.device_id, e)
            return False
        session = requests.Session()
        session.max_redirects = 0  # a redirect could lead anywhere: never followed
        session.trust_env = False
        try:
            webpush(
                {
                    "endpoint": target.endpoint,
                    "keys": {"p256dh": b64url(target.p256dh), "auth": b64url(target.auth)},
                },
                WAKE_PAYLOAD.decode(),
                vapid_private_key=self.vapid(),
                vapid_claims={"sub": self.config.push_subject},
                ttl=self.config.push_ttl,
                timeout=SEND_TIMEOUT,
                headers={"Urgency": "high", "Topic": TOPIC},
                requests_session=session,
            )
        except WebPushException as e:
            self.failed += 1
            if e.status_code in (404, 410):
                self.store.delete_push(target.account, target.device_id, target.endpoint)
                log.info("push: subscription of %s/%s is gone", target.account, target.device_id)
            else:
                log.warning(
                    "push to %s/%s failed: %s", target.account, target.device_id, e.status_code
                )
            return False
        except (requests.RequestException, OSError, ValueError) as e:
            self.failed += 1
            log.warning("push to %s/%s failed: %s", target.account, target.device_id, _line(e))
            return False
        finally:
            session.close()
        self.sent += 1
        return True

    def close(self) -> None:
        self.closed = True
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def _line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:200]


# ------------------------------------------------------------------ routes
def push_router(ctx: ServiceContext) -> APIRouter:
    """``GET /v1/push/key`` and the calling device's ``/v1/accounts/A/push``."""
    r = APIRouter(prefix="/v1")

    def sender() -> PushSender:
        if ctx.push is None:  # pragma: no cover - create_app sets it
            raise RuntimeError("no push sender")
        return ctx.push

    @r.get("/push/key")
    async def push_key() -> JSONResponse:
        key = await ctx.run(sender().public_key)
        return JSONResponse(
            {"vapid_public_key": b64url(key)}, headers={"Cache-Control": "no-cache"}
        )

    @r.put("/accounts/{account}/push")
    async def subscribe(account: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request, account=account)
        obj = await ctx.json_body(request, limit=8 * 1024)
        endpoint, p256dh, auth = parse_subscription(obj, ctx.config)
        target = PushTarget(account, device.id, endpoint, p256dh, auth)
        await ctx.run(ctx.store.put_push, target, ctx.now())
        return {"ok": True}

    @r.get("/accounts/{account}/push")
    async def subscription(account: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request, account=account)
        found = await ctx.run(ctx.store.get_push, account, device.id)
        if found is None:
            return {"subscription": None}
        return {
            "subscription": {
                "endpoint": found.endpoint,
                "keys": {"p256dh": b64url(found.p256dh), "auth": b64url(found.auth)},
            }
        }

    @r.delete("/accounts/{account}/push")
    async def unsubscribe(account: str, request: Request) -> dict[str, Any]:
        device = await ctx.authenticate(request, account=account)
        deleted = await ctx.run(ctx.store.delete_push, account, device.id)
        return {"ok": True, "deleted": deleted}

    return r
