"""Web Push pieces without a network: the VAPID key shared through the database, endpoint
and key validation (the SSRF guard), and which devices a post wakes."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from keystead.core.errors import FormatError
from keystead.core.service import ServiceConfig, Store
from keystead.core.service.db import make_engine
from keystead.core.service.push import (
    PushSender,
    check_endpoint,
    host_allowed,
    parse_subscription,
)
from keystead.core.service.store import PushTarget


def test_one_vapid_key_for_every_process(store: Store, database_url: str) -> None:
    """Two stores on one database (two service processes) racing at their first start end
    up with the same key."""
    other = Store(make_engine(database_url))
    found: list[bytes] = []
    senders = [PushSender(s, ServiceConfig(), lambda: 0.0) for s in (store, other, store)]
    threads = [threading.Thread(target=lambda p=p: found.append(p.public_key())) for p in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.engine.dispose()
    assert len(found) == 3 and len(set(found)) == 1
    assert len(found[0]) == 65 and found[0][0] == 4


def test_allowed_hosts() -> None:
    allowed = ServiceConfig().push_allowed_hosts
    assert host_allowed("fcm.googleapis.com", allowed)
    assert host_allowed("FCM.googleapis.com.", allowed)
    assert host_allowed("web.push.apple.com", allowed)
    assert host_allowed("wns2-by3p.notify.windows.com", allowed)
    assert not host_allowed("push.apple.com", allowed)  # "*." is a sub-domain only
    assert not host_allowed("evilpush.apple.com", allowed)
    assert not host_allowed("fcm.googleapis.com.evil.example", allowed)
    assert not host_allowed("169.254.169.254", allowed)
    assert not host_allowed("localhost", allowed)


def _sub(endpoint: str) -> dict[str, object]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    b64 = base64.urlsafe_b64encode
    return {
        "endpoint": endpoint,
        "keys": {"p256dh": b64(raw).decode().rstrip("="), "auth": b64(b"a" * 16).decode()[:22]},
    }


def test_loopback_http_needs_the_option_and_the_host() -> None:
    url = "http://127.0.0.1:9999/push/x"
    with pytest.raises(FormatError, match="https://"):
        check_endpoint(url, ServiceConfig(push_allowed_hosts=("127.0.0.1",)))
    with pytest.raises(FormatError, match="push_allowed_hosts"):
        check_endpoint(url, ServiceConfig(push_allow_http_loopback=True))
    ok = ServiceConfig(push_allow_http_loopback=True, push_allowed_hosts=("127.0.0.1",))
    assert check_endpoint(url, ok) == url
    with pytest.raises(FormatError, match="https://"):  # only loopback, even when allowed
        check_endpoint(
            "http://10.1.2.3/x",
            ServiceConfig(push_allow_http_loopback=True, push_allowed_hosts=("10.1.2.3",)),
        )
    with pytest.raises(FormatError, match="port 443"):
        check_endpoint("https://fcm.googleapis.com:22/x", ServiceConfig())
    endpoint, p256dh, auth = parse_subscription(
        _sub("https://fcm.googleapis.com/x"), ServiceConfig()
    )
    assert len(p256dh) == 65 and len(auth) == 16


def test_only_live_devices_with_the_scope_are_woken(store: Store) -> None:
    """Subscriptions of unknown (or removed) devices are dropped, not sent to."""
    target = PushTarget("acct", "nodevice", "https://fcm.googleapis.com/x", b"\x04" * 65, b"a" * 16)
    store.put_push(target, 1)
    assert store.get_push("acct", "nodevice") == target
    assert store.push_targets("acct", "confirm") == []
    assert store.get_push("acct", "nodevice") is None


def test_wake_ups_merge_while_queued(store: Store) -> None:
    sender = PushSender(store, ServiceConfig(), lambda: 0.0)
    gate = threading.Event()
    calls: list[tuple[str, str]] = []

    def wake(account: str, channel: str) -> None:
        gate.wait(5)
        calls.append((account, channel))
        with sender._lock:
            sender._pending.discard((account, channel))

    sender._wake = wake  # type: ignore[method-assign]
    sender.on_commit(["spool:a:confirm", "record:a:confirm", "spool:a:confirm"])
    sender.on_commit(["spool:a:confirm", "spool:b:messages"])
    gate.set()
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    sender.close()
    assert sorted(set(calls)) == [("a", "confirm"), ("b", "messages")]
    assert calls.count(("a", "confirm")) == 1
