"""``ssh authorized-keys`` when the service is down, slow or lying: a bounded cache, a kept pin.

A real service process that is stopped (connection refused), a loopback socket that accepts
connections and never answers (slow), an attacker's own ``keystead serve`` answering on the
real service's address, and a real sshd whose AuthorizedKeysCommand is the real CLI.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from keystead.adapters.ssh._authorized import NoFreshList, authorized_keys
from keystead.adapters.ssh._device import device_agent_key
from keystead.adapters.ssh._keys import AgentKey
from keystead.core import Device
from keystead.core import Home as CoreHome
from keystead.core.client import ServiceClient
from keystead.core.testing import ServiceProcess
from ssh_harness import RunningAgent, Sshd

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "keystead.core.cli"]


@pytest.fixture
def acct(make_account: Callable[..., Any]) -> Any:
    return make_account("akfresh")


@pytest.fixture
def ak_cache(tmp_path: Path) -> Path:
    return tmp_path / "ak-cache"


def run_ak(
    acct: Any, cache: Path, *extra: str, server: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``keystead ssh authorized-keys`` as sshd runs it: an empty environment."""
    env = {"PATH": "/usr/bin:/bin", "KEYSTEAD_SSH_CACHE": str(cache)}
    return subprocess.run(
        [*CLI, "ssh", "authorized-keys", acct.name, "--server", server or acct.service.url, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@contextmanager
def stalled(port: int) -> Iterator[None]:
    """A socket on the service's port that completes TCP handshakes (the kernel does, from
    the listen backlog) and never reads or answers: a stalled service."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        yield


@contextmanager
def service_down(service: ServiceProcess, *, stall: bool = False) -> Iterator[None]:
    service.stop()
    try:
        if stall:
            with stalled(service.port):
                yield
        else:
            yield
    finally:
        service.start()


def device_key(home: Any) -> AgentKey:
    """The device's SSH private key, read from its keystore (a removed device keeps it)."""
    dev = Device.open(CoreHome(home.path), home.passphrase)
    try:
        return device_agent_key(dev)
    finally:
        dev.close()


def test_refused_and_slow_are_told_apart_and_the_cache_is_bounded(
    acct: Any, ak_cache: Path
) -> None:
    online = run_ak(acct, ak_cache)
    assert online.returncode == 0 and online.stderr == "", online.stderr
    assert online.stdout.splitlines()[0].endswith(f"keystead:{acct.name}:laptop")
    with service_down(acct.service):
        refused = run_ak(acct, ak_cache)
        assert (refused.returncode, refused.stdout) == (0, online.stdout), refused.stderr
        assert "is unreachable (connection refused)" in refused.stderr
        assert "printing the list verified" in refused.stderr and "slow" not in refused.stderr
        too_old = run_ak(acct, ak_cache, "--max-stale", "0")
        assert (too_old.returncode, too_old.stdout) == (1, "")
        assert "unreachable (connection refused)" in too_old.stderr
        assert "older than --max-stale 0 s" in too_old.stderr
        assert len(too_old.stderr.splitlines()) == 1
        with stalled(acct.service.port):
            started = time.monotonic()
            slow = run_ak(acct, ak_cache, "--timeout", "1")
            assert time.monotonic() - started < 15
            assert (slow.returncode, slow.stdout) == (0, online.stdout), slow.stderr
            assert "is slow (no answer within 1 s)" in slow.stderr
            assert "unreachable" not in slow.stderr
            slow_old = run_ak(acct, ak_cache, "--timeout", "1", "--max-stale", "0")
            assert (slow_old.returncode, slow_old.stdout) == (1, "")
            assert "slow" in slow_old.stderr and "older than --max-stale" in slow_old.stderr
    # back online: the list is verified again, and served with no note
    again = run_ak(acct, ak_cache)
    assert (again.returncode, again.stdout, again.stderr) == (0, online.stdout, "")


def test_max_stale_bound_with_a_supplied_clock(acct: Any, ak_cache: Path) -> None:
    """The library takes the clock: the cached list is served at 299 s, not at 301 s."""
    server = acct.service.url
    first = authorized_keys(server, acct.name, cache=ak_cache)
    assert not first.offline
    with service_down(acct.service):
        inside = authorized_keys(server, acct.name, cache=ak_cache, clock=lambda: time.time() + 299)
        assert inside.offline and inside.lines == first.lines and 299 <= inside.age < 310
        with pytest.raises(NoFreshList, match="older than --max-stale 300"):
            authorized_keys(server, acct.name, cache=ak_cache, clock=lambda: time.time() + 301)
        with pytest.raises(NoFreshList, match="no list verified before"):
            authorized_keys(server, acct.name, cache=ak_cache / "empty")


def test_a_name_that_does_not_resolve_is_unreachable(acct: Any, ak_cache: Path) -> None:
    result = run_ak(acct, ak_cache, server="http://keystead-test.invalid:8080")
    assert (result.returncode, result.stdout) == (1, "")
    assert "is unreachable" in result.stderr and "slow" not in result.stderr
    assert "no list verified before" in result.stderr


class StallPublished(httpx.BaseTransport):
    """The real service over real HTTP, except that the imported-keys list never comes."""

    def __init__(self) -> None:
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/published-keys"):
            raise httpx.ReadTimeout("stalled", request=request)
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


def test_a_removal_is_remembered_even_when_the_rest_of_the_run_fails(
    acct: Any, ak_cache: Path
) -> None:
    """The chain that removes the phone arrives, the next request stalls: the cached list is
    served, but from the newest chain (no phone), and so is every later offline run."""
    server = acct.service.url
    acct.join("phone", scopes=["ssh"])
    before = authorized_keys(server, acct.name, cache=ak_cache)
    assert any(line.endswith(":phone") for line in before.lines)
    acct.admin.run("device", "remove", "phone")
    partial = authorized_keys(
        server,
        acct.name,
        cache=ak_cache,
        client_factory=lambda url: ServiceClient(url, transport=StallPublished(), timeout=2),
    )
    assert partial.offline and "is slow" in partial.problem
    assert partial.lines == [x for x in before.lines if not x.endswith(":phone")]
    assert partial.chain_seq > before.chain_seq
    with service_down(acct.service):
        offline = authorized_keys(server, acct.name, cache=ak_cache)
        assert offline.offline and offline.lines == partial.lines


# ------------------------------------------------------------------ a removed device, real sshd
@pytest.fixture
def authorized_keys_command(acct: Any, ak_cache: Path) -> str:
    return (
        f"exec env -i PATH=/usr/bin:/bin KEYSTEAD_SSH_CACHE='{ak_cache}' {' '.join(CLI)} "
        f"ssh authorized-keys {acct.name} --server {acct.service.url} --timeout 2"
    )


def test_a_removed_device_is_not_served_from_the_cache_once_the_removal_was_seen(
    acct: Any, sshd: Sshd, ak_cache: Path, start_agent: Callable[..., RunningAgent]
) -> None:
    phone = acct.join("phone", scopes=["ssh"])
    laptop_agent = start_agent([device_key(acct.admin)])
    phone_agent = start_agent([device_key(phone)])  # the phone keeps its key after removal
    assert sshd.ssh(phone_agent.socket_path, "true").returncode == 0, sshd.log()
    with service_down(acct.service, stall=True):  # the cache stands in while fresh ...
        assert sshd.ssh(phone_agent.socket_path, "true").returncode == 0, sshd.log()
    acct.admin.run("device", "remove", "phone")
    assert sshd.ssh(phone_agent.socket_path, "true").returncode == 255  # removal seen online
    with service_down(acct.service, stall=True):
        # ... still for the laptop, and never again for the phone
        result = sshd.ssh(laptop_agent.socket_path, "echo", "cached")
        assert (result.returncode, result.stdout) == (0, "cached\n"), result.stderr + sshd.log()
        assert sshd.ssh(phone_agent.socket_path, "true").returncode == 255
        listed = run_ak(acct, ak_cache, "--timeout", "1")
        assert listed.returncode == 0 and "is slow" in listed.stderr
        assert f"keystead:{acct.name}:laptop" in listed.stdout and "phone" not in listed.stdout
        # Past --max-stale (the cache's verification time moved back 400 s), sshd gets no key.
        (cache_file,) = ak_cache.glob("authorized-*.json")
        cached = json.loads(cache_file.read_text())
        cached["verified_at"] -= 400
        cache_file.write_text(json.dumps(cached))
        result = sshd.ssh(laptop_agent.socket_path, "true")
        assert result.returncode == 255 and "Permission denied" in result.stderr


# ------------------------------------------------------------------ the pin survives runs
def test_the_pin_survives_runs_and_refuses_an_impersonating_service(
    acct: Any, ak_cache: Path, tmp_path: Path
) -> None:
    """The attacker runs its own service on the real one's address, with its own "ACCOUNT"
    (its own account key) and a device of its own with an SSH key."""
    online = run_ak(acct, ak_cache)
    assert online.returncode == 0
    evil_dir = tmp_path / "evil-service"
    evil_dir.mkdir()
    evil = ServiceProcess(f"sqlite:///{evil_dir / 'evil.sqlite'}", evil_dir, port=acct.service.port)
    acct.service.stop()
    try:
        evil.start()
        evil_admin = type(acct.admin)(tmp_path / "evil-laptop")  # conftest's Home, Account
        out = evil_admin.run(
            "account", "create", acct.name, "--server", evil.url, "--device", "laptop"
        ).stdout
        fake = type(acct)(
            acct.name, evil, evil_admin, out.split("recovery key: ", 1)[1].strip(), tmp_path
        )
        fake.join("evil-phone", scopes=["ssh"])  # a longer chain than the pinned one
        # Control: a host with no pin takes the attacker's keys (the test can fail).
        fresh = run_ak(acct, tmp_path / "fresh-cache")
        assert fresh.returncode == 0 and f"keystead:{acct.name}:evil-phone" in fresh.stdout
        # The pinned host refuses, prints nothing, says why in one line, exit 5.
        pinned = run_ak(acct, ak_cache)
        assert (pinned.returncode, pinned.stdout) == (5, ""), pinned.stderr
        assert "does not continue the one pinned" in pinned.stderr
        assert len(pinned.stderr.splitlines()) == 1
        # ... and keeps refusing: the refusal did not overwrite the pin.
        assert run_ak(acct, ak_cache).returncode == 5
    finally:
        evil.stop()
        acct.service.start()
    back = run_ak(acct, ak_cache)
    assert (back.returncode, back.stdout) == (0, online.stdout), back.stderr
