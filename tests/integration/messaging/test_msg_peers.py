"""Attacker tests: a message whose ``from`` names another host, and hostile error text.

Mallory has only her own account and device. She posts into bob's spool an envelope whose
``from`` names a service she runs (here: a small HTTP server on loopback that records every
request and answers with an error full of newlines and ANSI escapes). Bob's device must not
contact that service unless bob allowed it (``keystead msg peers allow``), and when he has,
the service's words must not reach his terminal as control characters or fake lines.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from keystead.adapters.messaging._envelope import (
    body_ad,
    make_envelope,
    new_message_id,
    seal_body,
)
from keystead.core import Device, b64e, random_bytes, seal_to_key
from keystead.core import Home as CoreHome
from keystead.core.client import path

HOSTILE = (
    "nope\n1  2026-01-01T00:00:00Z  alice@bank (verified): send money\r"
    "\x1b[2K\x1b[1A\x1b[31mERASED\x1b[0m\u202e"
)


@pytest.fixture
def hostile_service() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(self.path)
            body = json.dumps({"error": "weird", "message": HOSTILE}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _device(home: Any) -> Device:
    dev = Device.open(CoreHome(home.path), home.passphrase)
    dev.chain()
    return dev


def _post_claiming(mallory: Any, bob: Any, sender: str) -> None:
    """Mallory signs an envelope whose ``from`` is ``sender`` and posts it to bob."""
    m = _device(mallory.admin)
    try:
        bob_chain = m.peer_chain(bob.name)
        to = f"{bob.name}@{bob.service.url.split('//', 1)[1]}"
        mk, mid, now = random_bytes(32), new_message_id(), int(time.time())
        sealed = seal_to_key(bob_chain, "messages", mk)
        body = seal_body(mk, "hello", body_ad(mid, sender, m.device_id, now, None))
        wire = make_envelope(
            m.keys.signing,
            message_id=mid,
            sender=sender,
            device=m.device_id,
            to=to,
            time=now,
            group=None,
            sealed_key=sealed,
            body=body,
        )
        m.client.post(path("messaging", "direct", bob.name), {"body": b64e(wire)})
    finally:
        m.close()


def test_a_sender_on_an_unknown_host_is_refused_without_contacting_it(
    make_account: Any, hostile_service: tuple[str, list[str]]
) -> None:
    host, seen = hostile_service
    bob, mallory = make_account("bob"), make_account("mallory")
    _post_claiming(mallory, bob, f"alice@{host}")
    (msg,) = bob.admin.json("msg", "inbox", "--json")
    assert msg["verified"] is False and msg["text"] is None
    assert "not allowed" in msg["refused"] and f"msg peers allow {host}" in msg["refused"]
    assert seen == []  # bob's device sent nothing to mallory's host


def test_an_allowed_hosts_error_text_is_printed_without_controls(
    make_account: Any, hostile_service: tuple[str, list[str]]
) -> None:
    host, seen = hostile_service
    bob, mallory = make_account("bob"), make_account("mallory")
    bob.admin.run("msg", "peers", "allow", host)
    assert bob.admin.json("msg", "peers", "list", "--json") == [host]
    _post_claiming(mallory, bob, f"alice@{host}")
    out = bob.admin.run("msg", "inbox").stdout
    assert seen  # allowed: now it is contacted
    assert out.count("\n") == 1 and "REFUSED" in out  # one line: nothing faked a second one
    assert "(verified)" not in out.split("REFUSED", 1)[0]
    for bad in ("\x1b", "\r", "\u202e"):
        assert bad not in out
    shown = bob.admin.run("msg", "read", "1").stdout
    assert "\x1b" not in shown and "\r" not in shown and shown.count("\n") == 3
    # deny: the host is no longer contacted
    bob.admin.run("msg", "peers", "deny", host)
    assert bob.admin.json("msg", "peers", "list", "--json") == []
    before = len(seen)
    _post_claiming(mallory, bob, f"alice@{host}")
    last = bob.admin.json("msg", "inbox", "--json")[-1]
    assert "not allowed" in last["refused"] and len(seen) == before


def test_peer_hosts_are_checked(make_account: Any) -> None:
    bob = make_account("bob")
    for bad in ("EVIL.example", "evil.example:0", "a b", "evil.example:99999", "x@y"):
        proc = bob.admin.run("msg", "peers", "allow", bad, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("keystead: "), bad
        assert proc.stderr.count("\n") == 1
