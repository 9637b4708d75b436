"""Helpers for the real-OpenSSH tests: a handle on a running sshd and on our agent.

Kept out of conftest.py so test modules can import them by a unique name.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keystead.adapters.ssh._keys import AgentKey, PublicKey
from keystead.adapters.ssh.agent import SshAgent


@dataclass
class Sshd:
    """A running private sshd; ``keys_file`` feeds the default AuthorizedKeysCommand."""

    port: int
    host_key: PublicKey
    keys_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def set_authorized_keys(self, lines: Sequence[str]) -> None:
        """What the default wrapper prints for every user."""
        self.keys_file.write_text("".join(line + "\n" for line in lines))

    def ssh(
        self, agent_socket: Path | str, *command: str, options: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ssh root@127.0.0.1 COMMAND`` authenticating only through the agent.

        ``options`` come first, so they override the defaults (ssh keeps the first value).
        """
        argv = [
            "ssh", "-F", "/dev/null", *options, "-o", "IdentitiesOnly=no", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10", "-p", str(self.port), "root@127.0.0.1",
            *command,
        ]  # fmt: skip
        env = dict(os.environ, SSH_AUTH_SOCK=str(agent_socket))
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

    def log(self) -> str:
        """sshd's log so far (for assertion messages)."""
        return self.log_file.read_text(errors="replace")


def wait_for_banner(port: int, proc: subprocess.Popen[bytes], server: Sshd) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not start: {server.log()}")


@dataclass
class RunningAgent:
    """Our agent on a temp socket; edit ``keys`` (device key first) to change what it serves."""

    agent: SshAgent
    socket_path: Path
    keys: list[AgentKey] = field(default_factory=list)
