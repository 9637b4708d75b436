"""Web Push end to end: a real ``keystead serve``, a loopback HTTP server playing the push
service, real devices (CLI-made, opened in-process to sign their subscription), and a
relying party on the real CLI. The test holds the subscription's private key and auth
secret, as a browser would, and decrypts what the push service received (RFC 8291) to show
that it carries the wake-up and nothing else; it checks the VAPID token (RFC 8292) against
the key the service publishes."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from keystead.core import Device
from keystead.core import Home as CoreHome
from keystead.core.client import path
from keystead.core.errors import FormatError
from keystead.core.testing import ServiceProcess, database_url, free_port

SUBJECT = "mailto:ops@keystead.test"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ----------------------------------------------------------------- the push service
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """A loopback HTTP server standing for FCM / Mozilla / Apple: it records each POST and
    answers 201, or 410 for endpoints under ``/gone/``, 4 s late under ``/slow/``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: queue.Queue[Received] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.got.put(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if self.path.startswith("/slow/"):
                    time.sleep(4)  # a push service that takes its time to answer
                if self.path.startswith("/redirect/"):
                    self.send_response(307)  # "go post it to an address inside the network"
                    self.send_header("location", f"http://127.0.0.1:{outer.port}/internal/")
                else:
                    self.send_response(410 if self.path.startswith("/gone/") else 201)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def take(self, prefix: str, timeout: float = 15) -> Received:
        """The next push to an endpoint path starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no push to {prefix} arrived")
            try:
                r = self.got.get(timeout=left)
            except queue.Empty:
                continue
            if r.path.startswith(prefix):
                return r

    def none_to(self, prefix: str, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                r = self.got.get(timeout=left)
            except queue.Empty:
                break
            if r.path.startswith(prefix):
                return False
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    ps = PushService()
    yield ps
    ps.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """This module's service allows pushes to the loopback push service (and the default
    hosts); it replaces the shared fixture of tests/conftest.py."""
    work = tmp_path_factory.mktemp("push-service")
    svc = ServiceProcess(
        database_url(work),
        work,
        env={
            "KEYSTEAD_PUSH_ALLOWED_HOSTS": "127.0.0.1,*.push.apple.com,fcm.googleapis.com",
            "KEYSTEAD_PUSH_ALLOW_HTTP_LOOPBACK": "true",
            "KEYSTEAD_PUSH_SUBJECT": SUBJECT,
        },
    )
    svc.start()
    yield svc
    svc.stop()


# ----------------------------------------------------------------- a subscriber
@dataclass
class Subscription:
    """What a browser's PushManager holds: the private key and the auth secret stay here."""

    private: ec.EllipticCurvePrivateKey
    auth: bytes
    endpoint: str

    @classmethod
    def new(cls, endpoint: str) -> Subscription:
        return cls(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16), endpoint)

    @property
    def p256dh(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64u(self.p256dh), "auth": b64u(self.auth)},
        }

    def decrypt(self, body: bytes) -> bytes:
        return bytes(
            http_ece.decrypt(
                body, private_key=self.private, auth_secret=self.auth, version="aes128gcm"
            )
        )


def subscribe(home: Any, body: dict[str, Any]) -> Any:
    dev = Device.open(CoreHome(home.path), home.passphrase)
    try:
        return dev.client.put(path("accounts", dev.account, "push"), body)
    finally:
        dev.close()


def signed(home: Any, method: str, *parts: str) -> Any:
    dev = Device.open(CoreHome(home.path), home.passphrase)
    try:
        url = path("accounts", dev.account, *parts)
        return dev.client.get(url) if method == "GET" else dev.client.delete(url)
    finally:
        dev.close()


def rp_request(
    service: ServiceProcess, account: str, token: str, rp_home: Path, message: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
    env["KEYSTEAD_HOME"] = str(rp_home)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keystead.core.cli",
            "confirm",
            "request",
            account,
            "--server",
            service.url,
            "--rp-token",
            token,
            "--message",
            message,
            "--wait",
            "3",
            "--no-number-matching",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def vapid_key(service: ServiceProcess) -> str:
    resp = httpx.get(service.url + "/v1/push/key", headers={"Keystead-Protocol": "2"})
    assert resp.status_code == 200
    return str(resp.json()["vapid_public_key"])


def check_vapid(received: Received, key_b64: str, audience: str) -> dict[str, Any]:
    """RFC 8292: ``Authorization: vapid t=JWT, k=KEY``; ES256 over the JWT by KEY."""
    scheme, _, params = received.headers["authorization"].partition(" ")
    assert scheme.lower() == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == key_b64
    header_b64, claims_b64, sig_b64 = parts["t"].split(".")
    assert json.loads(unb64u(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    sig = unb64u(sig_b64)
    assert len(sig) == 64
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(key_b64))
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):  # the check can fail: another message does not verify
        public.verify(der, f"{header_b64}.{claims_b64}x".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = json.loads(unb64u(claims_b64))
    assert claims["aud"] == audience and claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return claims


# ----------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def world(service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One account: an admin laptop, a phone with the confirm scope, a tablet without it,
    and an allowed relying party."""
    from keystead.core.testing import DeviceHome, unique

    tmp = tmp_path_factory.mktemp("push-world")
    name = unique("push")
    admin = DeviceHome(tmp / "laptop")
    admin.run("account", "create", name, "--server", service.url, "--device", "laptop")

    def join(device: str, scopes: str) -> DeviceHome:
        home = DeviceHome(tmp / device)
        proc = home.spawn(
            "device", "join", name, "--server", service.url, "--device", device, "--wait", "60"
        )
        assert proc.stdout is not None
        code = proc.stdout.readline().split(": ", 1)[1].strip()
        admin.run("device", "approve", code, "--scopes", scopes, "--yes")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return home

    phone = join("phone", "confirm,totp")
    tablet = join("tablet", "totp")
    token = admin.run("confirm", "allow", "bank.example").stdout.split("rp token: ")[1].strip()
    return {
        "name": name,
        "admin": admin,
        "phone": phone,
        "tablet": tablet,
        "token": token,
        "tmp": tmp,
    }


def test_vapid_key_is_stable_and_a_p256_point(service: ServiceProcess) -> None:
    key = vapid_key(service)
    raw = unb64u(key)
    assert len(raw) == 65 and raw[0] == 4 and len(key) == 87
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    # a request without the protocol header is refused like any /v1 request
    old = httpx.get(service.url + "/v1/push/key")
    assert old.status_code == 400 and old.json()["error"] == "unsupported_version"
    # kept in the database: a restart serves the same key
    service.stop()
    service.start()
    assert vapid_key(service) == key


def test_a_prompt_wakes_the_phone_with_only_a_wake_up(
    service: ServiceProcess, push_service: PushService, world: dict[str, Any]
) -> None:
    phone_sub = Subscription.new(push_service.endpoint("phone/" + secrets.token_hex(8)))
    tablet_sub = Subscription.new(push_service.endpoint("tablet/" + secrets.token_hex(8)))
    assert subscribe(world["phone"], phone_sub.json()) == {"ok": True}
    assert subscribe(world["tablet"], tablet_sub.json()) == {"ok": True}
    assert signed(world["phone"], "GET", "push")["subscription"] == phone_sub.json()

    message = "Log in to bank.example from Lisbon?"
    started = time.monotonic()
    rp = rp_request(service, world["name"], world["token"], world["tmp"] / "rp", message)
    got = push_service.take("/phone/")
    elapsed = time.monotonic() - started
    rp.communicate(timeout=30)

    # RFC 8030 headers, RFC 8291 encryption: only the subscriber's keys open it
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["ttl"] == "60" and got.headers["urgency"] == "high"
    assert got.headers["topic"] == "keystead-wake"
    plaintext = phone_sub.decrypt(got.body)
    assert plaintext == b'{"t":"wake"}'
    assert message.encode() not in got.body and b"bank" not in got.body
    other = Subscription.new(phone_sub.endpoint)
    with pytest.raises(Exception):  # noqa: B017 - http_ece raises several kinds
        other.decrypt(got.body)
    check_vapid(got, vapid_key(service), f"http://127.0.0.1:{push_service.port}")
    assert elapsed < 10
    # the tablet has no confirm scope: it is not woken for prompts
    assert push_service.none_to("/tablet/", 1.5)
    metrics = httpx.get(service.url + "/metrics").text
    sent = re.search(r"^keystead_push_sent (\S+)$", metrics, re.M)
    assert sent is not None and float(sent.group(1)) >= 1


def test_refused_subscriptions(service: ServiceProcess, world: dict[str, Any]) -> None:
    good = Subscription.new("https://fcm.googleapis.com/fcm/send/abc")
    body = good.json()

    def refused(b: dict[str, Any], words: str) -> None:
        with pytest.raises(FormatError) as e:
            subscribe(world["phone"], b)
        assert words in str(e.value), str(e.value)

    refused({**body, "endpoint": "https://evil.example/push"}, "push_allowed_hosts")
    refused({**body, "endpoint": "https://10.0.0.5/push"}, "push_allowed_hosts")
    refused({**body, "endpoint": "https://push.apple.com.evil.example/x"}, "push_allowed_hosts")
    refused({**body, "endpoint": "http://fcm.googleapis.com/fcm/send/abc"}, "https://")
    refused({**body, "endpoint": "http://localhost:1/x"}, "push_allowed_hosts")
    refused({**body, "endpoint": "ftp://fcm.googleapis.com/x"}, "https://")
    refused({**body, "endpoint": "https://u:p@fcm.googleapis.com/x"}, "user name")
    refused({**body, "endpoint": "https://fcm.googleapis.com/" + "a" * 3000}, "longer than")
    refused({**body, "endpoint": 5}, "endpoint")
    keys = body["keys"]
    refused({**body, "keys": {**keys, "auth": b64u(b"x" * 15)}}, "16 bytes")
    padded = base64.urlsafe_b64encode(good.auth).decode()  # "=" padding is accepted
    assert padded.endswith("==")
    assert subscribe(world["phone"], {**body, "keys": {**keys, "auth": padded}}) == {"ok": True}
    refused({**body, "keys": {**keys, "p256dh": b64u(b"\x04" + b"\x01" * 64)}}, "not a point")
    refused({**body, "keys": {**keys, "p256dh": b64u(good.p256dh[:33])}}, "65-byte")
    refused({**body, "keys": {**keys, "p256dh": "+/" + b64u(good.p256dh)[2:]}}, "base64url")
    refused({**body, "keys": {**keys, "extra": "x"}}, "keys must be exactly")
    refused({**body, "expirationTime": None}, "exactly")
    # an allowed sub-domain pattern and an allowed host pass
    assert subscribe(
        world["phone"], {**body, "endpoint": "https://api.push.apple.com/3/device/x"}
    ) == {"ok": True}
    assert subscribe(world["phone"], body) == {"ok": True}
    # unsigned: refused before anything is read
    resp = httpx.put(
        f"{service.url}/v1/accounts/{world['name']}/push",
        json=body,
        headers={"Keystead-Protocol": "2"},
    )
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
    assert signed(world["phone"], "DELETE", "push") == {"ok": True, "deleted": True}
    assert signed(world["phone"], "DELETE", "push") == {"ok": True, "deleted": False}
    assert signed(world["phone"], "GET", "push") == {"subscription": None}


def test_gone_subscription_is_deleted(
    service: ServiceProcess, push_service: PushService, world: dict[str, Any]
) -> None:
    sub = Subscription.new(push_service.endpoint("gone/" + secrets.token_hex(8)))
    subscribe(world["phone"], sub.json())
    rp = rp_request(service, world["name"], world["token"], world["tmp"] / "rp", "Gone?")
    push_service.take("/gone/")
    rp.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while signed(world["phone"], "GET", "push")["subscription"] is not None:
        assert time.monotonic() < deadline, "a 410 did not delete the subscription"
        time.sleep(0.1)


def test_a_removed_device_gets_no_push(
    service: ServiceProcess, push_service: PushService, world: dict[str, Any]
) -> None:
    """The attacker: a stolen phone that stays subscribed. After its removal, prompts
    wake nobody through its subscription."""
    from keystead.core.testing import DeviceHome

    admin, tmp = world["admin"], world["tmp"]
    stolen = DeviceHome(tmp / "stolen")
    proc = stolen.spawn(
        "device",
        "join",
        world["name"],
        "--server",
        service.url,
        "--device",
        "stolen",
        "--wait",
        "60",
    )
    assert proc.stdout is not None
    code = proc.stdout.readline().split(": ", 1)[1].strip()
    admin.run("device", "approve", code, "--scopes", "confirm", "--yes")
    proc.communicate(timeout=60)
    sub = Subscription.new(push_service.endpoint("stolen/" + secrets.token_hex(8)))
    subscribe(stolen, sub.json())
    # while live, it is woken
    rp = rp_request(service, world["name"], world["token"], tmp / "rp", "Before removal")
    assert sub.decrypt(push_service.take("/stolen/").body) == b'{"t":"wake"}'
    rp.communicate(timeout=30)

    admin.run("device", "remove", "stolen")
    rp = rp_request(service, world["name"], world["token"], tmp / "rp", "After removal")
    assert push_service.none_to("/stolen/", 2.0)
    rp.communicate(timeout=30)
    # and it cannot subscribe again
    with pytest.raises(Exception) as e:  # noqa: B017
        subscribe(stolen, sub.json())
    assert "removed" in str(e.value)


def test_a_slow_push_service_does_not_delay_the_rp(
    service: ServiceProcess, push_service: PushService, world: dict[str, Any]
) -> None:
    from keystead.adapters.second_factor import RelyingPartyClient

    sub = Subscription.new(push_service.endpoint("slow/" + secrets.token_hex(8)))
    subscribe(world["phone"], sub.json())
    times = []
    with RelyingPartyClient(
        service.url, world["name"], world["token"], pins=world["tmp"] / "rp-slow"
    ) as rp:
        rp.start("Warm up", number_matching=False)  # pins the account, fetches the chain
        push_service.take("/slow/")  # that push is now being answered, slowly
        for i in range(3):
            started = time.monotonic()
            rp.start(f"Slow push service {i}", number_matching=False)
            times.append(time.monotonic() - started)
    assert max(times) < 1.0, times  # the push service answers 4 s late: nobody waited
    assert sub.decrypt(push_service.take("/slow/").body) == b'{"t":"wake"}'


def test_a_redirect_from_the_push_service_is_not_followed(
    service: ServiceProcess, push_service: PushService, world: dict[str, Any]
) -> None:
    """A push service (or whoever holds its name) answering with a redirect to an address
    inside the network does not get the service to send anything there."""
    sub = Subscription.new(push_service.endpoint("redirect/" + secrets.token_hex(8)))
    subscribe(world["phone"], sub.json())
    rp = rp_request(service, world["name"], world["token"], world["tmp"] / "rp", "Redirect?")
    push_service.take("/redirect/")
    assert push_service.none_to("/internal/", 2.0)
    rp.communicate(timeout=30)
    # not a "gone" answer: the subscription stays
    assert signed(world["phone"], "GET", "push")["subscription"] == sub.json()
