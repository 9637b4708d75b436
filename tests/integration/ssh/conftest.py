"""Real OpenSSH peers for the ssh adapter: a private sshd and our agent on temp sockets.

``sshd`` logs in through ``AuthorizedKeysCommand``, a root-owned wrapper in a
root-owned folder under /run (sshd refuses anything less). The wrapper runs
the shell snippet given by the ``authorized_keys_command`` fixture, with the
user name as ``$1``; by default it prints ``sshd.keys_file``. Point it at
another program by overriding that fixture in a test module, e.g.::

    @pytest.fixture
    def authorized_keys_command() -> str:
        return f'exec {sys.executable} -m keystead.core.cli ssh authorized-keys "$1"'

or per test with ``@pytest.mark.parametrize("authorized_keys_command", [...])``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from keystead.adapters.ssh._agent_core import ConfirmHook
from keystead.adapters.ssh._keys import AgentKey, generate_device_key
from keystead.adapters.ssh.agent import SshAgent
from keystead.core.testing import free_port
from ssh_harness import RunningAgent, Sshd, wait_for_banner

SSHD = "/usr/sbin/sshd"


@pytest.fixture
def authorized_keys_command(tmp_path: Path) -> str:
    """Shell snippet the AuthorizedKeysCommand wrapper runs (``$1`` is the user)."""
    return f"exec cat '{tmp_path / 'authorized_keys'}'"


@pytest.fixture
def sshd(tmp_path: Path, authorized_keys_command: str) -> Iterator[Sshd]:
    """A private sshd on 127.0.0.1:free port; stopped and cleaned up afterwards."""
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.fail("needs root and OpenSSH's sshd: run scripts/test as root, which installs it")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    host = generate_device_key("sshd-host")
    host_file = tmp_path / "ssh_host_ed25519_key"
    host_file.write_bytes(host.private_openssh())
    host_file.chmod(0o600)
    keys_file = tmp_path / "authorized_keys"
    keys_file.write_text("")
    wrapper_dir = Path(tempfile.mkdtemp(prefix="keystead-test-", dir="/run"))
    wrapper = wrapper_dir / "authorized-keys"
    wrapper.write_text(f"#!/bin/sh\n{authorized_keys_command}\n")
    wrapper.chmod(0o755)
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"""ListenAddress 127.0.0.1
Port {port}
HostKey {host_file}
PidFile {tmp_path / "sshd.pid"}
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AuthorizedKeysFile none
AuthorizedKeysCommand {wrapper} %u
AuthorizedKeysCommandUser root
LogLevel VERBOSE
"""
    )
    log_file = tmp_path / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log_file)])
    server = Sshd(port, host.public, keys_file, log_file, proc)
    try:
        wait_for_banner(port, proc, server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(wrapper_dir, ignore_errors=True)


@pytest.fixture
def device_key() -> AgentKey:
    """A fresh device Ed25519 SSH key."""
    return generate_device_key("device@keystead-test")


@pytest.fixture
def start_agent() -> Iterator[Callable[..., RunningAgent]]:
    """Factory: ``start_agent(keys, confirm=None, **agent_options)``; all stopped at teardown."""
    started: list[SshAgent] = []

    def start(
        keys: Sequence[AgentKey], confirm: ConfirmHook | None = None, **options: object
    ) -> RunningAgent:
        holder = list(keys)
        options.setdefault("cache_seconds", 0.0)
        agent = SshAgent(lambda: holder, confirm=confirm, **options)  # type: ignore[arg-type]
        path = agent.start()
        started.append(agent)
        running = RunningAgent(agent, path, holder)
        return running

    yield start
    for agent in started:
        agent.shutdown()


@pytest.fixture
def agent(start_agent: Callable[..., RunningAgent], device_key: AgentKey) -> RunningAgent:
    """Our agent serving just the device key."""
    return start_agent([device_key])
