"""The sshd fixture pointed at another AuthorizedKeysCommand: a program that sees the user."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from keystead.adapters.ssh._keys import AgentKey
from ssh_harness import RunningAgent, Sshd

pytestmark = pytest.mark.slow


@pytest.fixture
def authorized_keys_command(tmp_path: Path, device_key: AgentKey, keys_for_user: str) -> str:
    """A Python program living outside the root-owned folder, given the user as ``$1``."""
    keys = tmp_path / "keys-for-user"
    keys.write_text(device_key.public.line() + "\n")
    program = tmp_path / "print_keys.py"
    program.write_text(
        "import sys\n"
        f"if sys.argv[1] == {keys_for_user!r}:\n"
        f"    sys.stdout.write(open({str(keys)!r}).read())\n"
    )
    return f'exec {sys.executable} {program} "$1"'


@pytest.mark.parametrize("keys_for_user, logged_in", [("root", True), ("alice", False)])
def test_command_decides_per_user(sshd: Sshd, agent: RunningAgent, logged_in: bool) -> None:
    result = sshd.ssh(agent.socket_path, "true")
    assert (result.returncode == 0) is logged_in, result.stderr + sshd.log()
