"""Crashes in the middle of a rotation and of a recovery: the state is the old one or the new
one, never a mix, and the next command finishes the change.

A real service process, the real CLI, and between them a small HTTP relay that can hold the
one request that carries the bundle while the test kills the client or the service with
SIGKILL (by PID), then forwards or drops that request.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from keystead.core import b64d
from keystead.core.testing import CLI, ServiceProcess, database_url, free_port, unique
from keystead.core.testing import DeviceHome as Home


class Relay:
    """Forwards every request to the service; the one whose path ends with ``/bundle`` is
    held once armed, until the test says ``forward`` or ``drop``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.armed = False
        self.held = threading.Event()
        self.decision: str | None = None
        self.decided = threading.Event()
        self.forwarded = threading.Event()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if relay.armed and self.path.split("?")[0].endswith("/bundle"):
                    relay.armed = False
                    relay.held.set()
                    relay.decided.wait(60)
                    if relay.decision == "drop":
                        self.close_connection = True
                        return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "content-length")
                }
                try:
                    resp = httpx.request(
                        self.command,
                        relay.target + self.path,
                        content=body,
                        headers=headers,
                        timeout=30,
                    )
                except httpx.TransportError:
                    self.send_error(502)
                    return
                finally:
                    if relay.held.is_set():
                        relay.forwarded.set()
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "connection",
                        "transfer-encoding",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(resp.content)))
                self.end_headers()
                try:
                    self.wfile.write(resp.content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed: its answer is lost, as the test wants

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def decide(self, decision: str) -> None:
        self.decision = decision
        self.decided.set()

    def close(self) -> None:
        self.decided.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ServiceProcess, Relay]]:
    service = ServiceProcess(database_url(tmp_path), tmp_path)
    service.start()
    relay = Relay(service.url)
    yield service, relay
    relay.close()
    service.stop()


def _account(relay: Relay, tmp: Path) -> tuple[str, Home, Home, str]:
    """alice (through the relay) with an admin laptop and a member phone; a password."""
    name = unique("alice")
    laptop = Home(tmp / "laptop")
    out = laptop.run("account", "create", name, "--server", relay.url, "--device", "laptop").stdout
    recovery = out.strip().split("recovery key: ", 1)[1]
    phone = Home(tmp / "phone")
    join = phone.spawn(
        "device", "join", name, "--server", relay.url, "--device", "phone", "--wait", "60"
    )
    assert join.stdout is not None
    code = join.stdout.readline().split(": ", 1)[1].strip()
    laptop.run("device", "approve", code, "--yes")
    join.communicate(timeout=60)
    assert join.returncode == 0
    laptop.run("passwords", "add", "https://bank.example", "--username", "a", input="before\n")
    return name, laptop, phone, recovery


def _chain_has_removal(service: ServiceProcess, account: str) -> bool:
    return "device-removed" in [e["type"] for e in _entries(service, account)]


def _entries(service: ServiceProcess, account: str) -> list[dict[str, Any]]:
    """The chain's entries, read the way docs/PROTOCOL.md describes (no verification)."""
    raw = httpx.get(
        f"{service.url}/v1/accounts/{account}/chain", headers={"keystead-protocol": "2"}
    ).json()["entries"]
    return [json.loads(b64d(e["entry"])) for e in raw]


def _start_held(
    relay: Relay, home: Home, *args: str, input: str | None = None
) -> subprocess.Popen[str]:
    relay.armed = True
    proc = subprocess.Popen(
        [*CLI, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=home.env(),
    )
    if input is not None:
        assert proc.stdin is not None
        proc.stdin.write(input)
        proc.stdin.close()
    assert relay.held.wait(60), "the bundle never reached the relay"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL, by PID, while its bundle is held in the relay."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@pytest.mark.slow
@pytest.mark.parametrize("decision", ["drop", "forward"])
def test_client_killed_mid_removal(
    world: tuple[ServiceProcess, Relay], tmp_path: Path, decision: str
) -> None:
    service, relay = world
    name, laptop, phone, _ = _account(relay, tmp_path)
    proc = _start_held(relay, laptop, "device", "remove", "phone")
    _kill(proc)
    relay.decide(decision)
    if decision == "forward":
        assert relay.forwarded.wait(30)
    # The old state or the new, never a mix: the removal is in the chain exactly when the
    # bundle reached the service, and the phone reads as before until then.
    assert _chain_has_removal(service, name) == (decision == "forward")
    if decision == "drop":
        assert phone.run("passwords", "get", "https://bank.example").stdout.strip() == "before"
    # The next command on the laptop finishes the change (resends; the service answers
    # a bundle it already applied as done).
    laptop.run("sync")
    assert _chain_has_removal(service, name)
    laptop.run("passwords", "add", "https://after.example", "--username", "a", input="after\n")
    assert laptop.run("passwords", "get", "https://after.example").stdout.strip() == "after"
    refused = phone.run("sync", check=False)
    assert refused.returncode != 0 and "removed" in refused.stderr


@pytest.mark.slow
def test_service_killed_mid_removal(world: tuple[ServiceProcess, Relay], tmp_path: Path) -> None:
    service, relay = world
    name, laptop, phone, _ = _account(relay, tmp_path)
    proc = _start_held(relay, laptop, "device", "remove", "phone")
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait()
    service.process = None
    relay.decide("forward")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "502" in err and len(err.splitlines()) == 1, (out, err)
    service.start()
    assert not _chain_has_removal(service, name)
    laptop.run("sync")  # the kept bundle is resent to the restarted service
    assert _chain_has_removal(service, name)
    assert laptop.run("device", "list", "--json").stdout.count('"phone"') == 0


@pytest.mark.slow
@pytest.mark.parametrize("decision", ["drop", "forward"])
def test_recovery_killed_midway(
    world: tuple[ServiceProcess, Relay], tmp_path: Path, decision: str
) -> None:
    service, relay = world
    name, _, _, recovery = _account(relay, tmp_path)
    home = Home(tmp_path / "recovered")
    proc = _start_held(
        relay,
        home,
        "account",
        "recover",
        name,
        "--server",
        relay.url,
        "--device",
        "new-laptop",
        input=recovery + "\n",
    )
    _kill(proc)
    relay.decide(decision)
    if decision == "forward":
        assert relay.forwarded.wait(30)
    added = [e["body"].get("name") for e in _entries(service, name)]
    assert ("new-laptop" in added) == (decision == "forward")
    # Running the recovery again in the same home finishes it.
    home.run(
        "account",
        "recover",
        name,
        "--server",
        relay.url,
        "--device",
        "new-laptop",
        input=recovery + "\n",
    )
    assert home.run("passwords", "get", "https://bank.example").stdout.strip() == "before"
