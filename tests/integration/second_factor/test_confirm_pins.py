"""A relying party pins the account: an impersonating service cannot answer for it.

The attacker runs its own ``keystead serve`` on the real service's address, with its own
account of the same name (its own account key) and its own ``confirm`` device, and has
captured the RP's token (it travels in every request), so it can take prompts and answer
them, number matching included. A relying party that pinned the real account on first use,
or that was given the real key's fingerprint, refuses it (exit 5) before sending anything;
one with neither takes its approval (the control: the attack itself works).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from confirm_harness import World, finish, make_world, opened, rp_request, wait_for_prompt
from keystead.adapters.second_factor import DevicePromptSource, PinMismatch, RelyingPartyClient
from keystead.adapters.second_factor._pins import PinStore
from keystead.adapters.second_factor._wire import token_hash
from keystead.core.client import path
from keystead.core.testing import ServiceProcess


@pytest.fixture
def world(make_account: Any, service: Any) -> World:
    return make_world(make_account, service)


def pin_files(rp_home: Path) -> list[Path]:
    return sorted((rp_home / "rp-pins").glob("pin-*.json"))


def approve_next(
    world: World, message: str, *args: str, rp_home: Path | None = None
) -> tuple[int, str, str]:
    """One real ``confirm request`` that the account's phone approves."""
    run = World(world.account, world.phone, world.token, world.url, rp_home or world.rp_home)
    rp = rp_request(run, "--wait", "30", "--no-number-matching", *args, message=message)
    world.phone.run("confirm", "approve", wait_for_prompt(world.phone, message)["id"])
    return finish(rp)


@contextmanager
def impersonated(world: World, tmp: Path) -> Iterator[Any]:
    """The attacker's service on the real one's address, with its own account of the same
    name, a confirm device of its own, and the RP's captured token registered. Yields the
    attacker's confirm device (conftest's Home)."""
    service = world.account.service
    evil_dir = tmp / "evil-service"
    evil_dir.mkdir()
    evil = ServiceProcess(f"sqlite:///{evil_dir / 'evil.sqlite'}", evil_dir, port=service.port)
    service.stop()
    try:
        evil.start()
        admin = type(world.account.admin)(tmp / "evil-laptop")
        out = admin.run(
            "account", "create", world.account.name, "--server", evil.url, "--device", "laptop"
        ).stdout
        fake = type(world.account)(
            world.account.name, evil, admin, out.split("recovery key: ", 1)[1].strip(), tmp
        )
        phone = fake.join("evil-phone", scopes=["confirm"])
        with opened(admin) as dev:
            dev.client.put(
                path("confirm", fake.name, "rps", "bank.example"),
                {"token_sha256": token_hash(world.token)},
            )
        yield phone
    finally:
        evil.stop()
        service.start()


def test_a_pinned_relying_party_refuses_an_impersonating_service(
    world: World, tmp_path: Path
) -> None:
    code, out, err = approve_next(world, "First use")
    assert (code, out) == (0, "approved\n"), err
    (pin_file,) = pin_files(world.rp_home)
    pin = json.loads(pin_file.read_text())
    real_fpr = world.account.admin.json("account", "show", "--json")["account_fingerprint"]
    assert pin["account_key"] == real_fpr and pin["account"] == world.account.name
    with impersonated(world, tmp_path) as evil_phone:
        # Control: a relying party with no pin and no fingerprint is fooled, number included.
        fresh = World(world.account, evil_phone, world.token, world.url, tmp_path / "fresh-rp")
        fooled = rp_request(fresh, "--wait", "30", "--number-matching", message="Wire money?")
        assert fooled.stdout is not None
        shown = int(fooled.stdout.readline().split(": ")[1])
        with opened(evil_phone) as dev:
            src = DevicePromptSource(dev)
            (received,) = [r for r in src.received() if r.prompt.message == "Wire money?"]
            assert received.prompt.number == shown  # the service reads the sealed prompt
            src.approve(received.prompt.request_id, received.prompt.number)
        assert finish(fooled)[:2] == (0, "approved\n")
        # The pinned relying party refuses before it sends anything.
        code, out, err = finish(rp_request(world, "--wait", "10", message="Pinned"))
        assert (code, out) == (5, ""), err
        assert "not the one pinned on first use" in err and real_fpr in err
        assert len(err.splitlines()) == 1
        assert all(p["message"] != "Pinned" for p in evil_phone.json("confirm", "list", "--json"))
        assert json.loads(pin_file.read_text()) == pin  # the refusal left the pin alone
        # No pin, but the real fingerprint: refused too, and no pin is written.
        given = World(world.account, world.phone, world.token, world.url, tmp_path / "fpr-rp")
        code, out, err = finish(
            rp_request(given, "--wait", "10", "--fingerprint", real_fpr, message="Fingerprint")
        )
        assert (code, out) == (5, ""), err
        assert f"not the fingerprint given ({real_fpr})" in err
        assert pin_files(given.rp_home) == []
        # The Python API: the same pin folder, the same refusal.
        with RelyingPartyClient(
            world.url, world.account.name, world.token, pins=world.rp_home / "rp-pins"
        ) as rp:
            with pytest.raises(PinMismatch):
                rp.start("Python API", lifetime=10)
    # The real service again: the pin holds and the relying party works.
    code, out, err = approve_next(world, "Real again")
    assert (code, out) == (0, "approved\n"), err
    assert json.loads(pin_file.read_text())["account_key"] == real_fpr


# ------------------------------------------------------------------ rollback through a proxy
class RollbackProxy:
    """A service in the middle on loopback: forwards every request to the real service; with
    ``drop`` set it serves the account chain without its newest ``drop`` entries."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.drop = upstream, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                keep = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "keystead-protocol")
                    or k.lower().startswith("x-keystead")
                }
                r = httpx.request(
                    self.command, proxy.upstream + self.path, headers=keep, content=body, timeout=90
                )
                content = r.content
                if proxy.drop and self.command == "GET" and "/chain" in self.path:
                    obj = r.json()
                    obj["entries"] = obj["entries"][: -proxy.drop]
                    content = json.dumps(obj).encode()
                self.send_response(r.status_code)
                self.send_header("content-type", r.headers.get("content-type", "text/plain"))
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_pin_moves_forward_and_refuses_a_rollback(world: World, tmp_path: Path) -> None:
    proxy = RollbackProxy(world.url)
    pins = PinStore(tmp_path / "pins")

    def start() -> None:
        with RelyingPartyClient(proxy.url, world.account.name, world.token, pins=pins.folder) as rp:
            rp.start("Pin check", lifetime=5)

    try:
        start()
        first = pins.get(proxy.url, world.account.name)
        assert first is not None
        world.account.join("tablet", scopes=["confirm"])  # the chain grows
        start()
        moved = pins.get(proxy.url, world.account.name)
        assert moved is not None and moved.seq > first.seq and moved.pinned == first.pinned
        proxy.drop = 1  # the service now hides the newest entry
        with pytest.raises(PinMismatch, match="rolled back or forked"):
            start()
        assert pins.get(proxy.url, world.account.name) == moved
        proxy.drop = 0
        start()  # and the whole chain is accepted again
    finally:
        proxy.close()


# ------------------------------------------------------------------ plain http
def test_plain_http_is_refused_off_loopback(world: World) -> None:
    off = World(world.account, world.phone, world.token, "http://192.0.2.10:8080", world.rp_home)
    started = time.monotonic()
    code, out, err = finish(rp_request(off, "--wait", "5", message="Off loopback"))
    assert (code, out) == (1, "") and "refusing plain http to 192.0.2.10" in err
    assert time.monotonic() - started < 10 and len(err.splitlines()) == 1
    # 0.0.0.0 is no loopback address, though Linux connects it to the local service: with
    # --insecure-http the request goes through (and, unanswered, expires).
    port = world.url.rsplit(":", 1)[1]
    any_addr = World(
        world.account, world.phone, world.token, f"http://0.0.0.0:{port}", world.rp_home
    )
    code, out, err = finish(rp_request(any_addr, "--wait", "2", message="Any address"))
    assert code == 1 and "refusing plain http" in err
    code, out, err = finish(
        rp_request(
            any_addr,
            "--wait",
            "2",
            "--insecure-http",
            "--no-number-matching",
            message="Any address",
        )
    )
    assert (code, out) == (2, "expired\n"), err
