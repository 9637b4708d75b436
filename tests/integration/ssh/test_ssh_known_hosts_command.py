"""ssh itself reads our KnownHostsCommand output and accepts or refuses the real host key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from keystead.adapters.ssh._keys import AgentKey, generate_device_key
from keystead.adapters.ssh._known_hosts import known_hosts_line
from ssh_harness import RunningAgent, Sshd

pytestmark = pytest.mark.slow


def known_hosts_command(tmp_path: Path, lines: list[str]) -> list[str]:
    store = tmp_path / "synced_known_hosts"
    store.write_text("".join(line + "\n" for line in lines))
    program = tmp_path / "known_hosts_command.py"
    program.write_text(
        "import sys\n"
        "from keystead.adapters.ssh._known_hosts import known_hosts_command_output, "
        "parse_known_hosts\n"
        f"entries = parse_known_hosts(open({str(store)!r}).read())\n"
        "sys.stdout.write(known_hosts_command_output(entries, sys.argv[1]))\n"
    )
    return [
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"KnownHostsCommand={sys.executable} {program} %H",
    ]  # fmt: skip


@pytest.mark.parametrize("hashed", [False, True])
def test_known_host_accepted(
    tmp_path: Path, sshd: Sshd, agent: RunningAgent, device_key: AgentKey, hashed: bool
) -> None:
    sshd.set_authorized_keys([device_key.public.line()])
    line = known_hosts_line([f"[127.0.0.1]:{sshd.port}"], sshd.host_key, hashed=hashed)
    result = sshd.ssh(agent.socket_path, "true", options=known_hosts_command(tmp_path, [line]))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("marker", [None, "@revoked"])
def test_wrong_or_revoked_host_key_refused(
    tmp_path: Path, sshd: Sshd, agent: RunningAgent, device_key: AgentKey, marker: str | None
) -> None:
    sshd.set_authorized_keys([device_key.public.line()])
    name = f"[127.0.0.1]:{sshd.port}"
    key = sshd.host_key if marker else generate_device_key("impostor").public
    lines = [known_hosts_line([name], key, marker=marker)]
    if marker:  # the revoked key is also listed as known: revocation must win
        lines.append(known_hosts_line([name], sshd.host_key))
    result = sshd.ssh(agent.socket_path, "true", options=known_hosts_command(tmp_path, lines))
    assert result.returncode == 255
    assert "REVOKED" in result.stderr or "Host key verification failed" in result.stderr
