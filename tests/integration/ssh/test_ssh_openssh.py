"""Our agent against real OpenSSH: ssh-add, paramiko, ssh into a private sshd."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from keystead.adapters.ssh._agent_core import SignContext
from keystead.adapters.ssh._keys import (
    MAX_AGENT_KEYS,
    AgentKey,
    authorized_keys_line,
    generate_device_key,
    load_private_key_file,
)
from keystead.adapters.ssh._verify import verify_signature
from ssh_harness import RunningAgent, Sshd

pytestmark = pytest.mark.slow


def ssh_add(sock: Path, flag: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
    return subprocess.run(["ssh-add", flag], env=env, capture_output=True, text=True, timeout=10)


def rsa_key(comment: str = "imported-rsa") -> AgentKey:
    return AgentKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), comment)


def test_ssh_add_lists_device_key_first_then_imported(
    start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    imported = rsa_key()
    running = start_agent([device_key, imported])
    listed = ssh_add(running.socket_path, "-L")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [device_key.public.line(), imported.public.line()]
    fingerprints = ssh_add(running.socket_path, "-l")
    assert fingerprints.returncode == 0
    lines = fingerprints.stdout.splitlines()
    assert device_key.public.fingerprint in lines[0] and "(ED25519)" in lines[0]
    assert imported.public.fingerprint in lines[1] and "(RSA)" in lines[1]


def test_ssh_add_sees_no_keys_and_cannot_modify(agent: RunningAgent) -> None:
    agent.keys.clear()
    listed = ssh_add(agent.socket_path, "-l")
    assert listed.returncode == 1 and "no identities" in listed.stdout
    assert ssh_add(agent.socket_path, "-D").returncode != 0  # REMOVE_ALL gets FAILURE


def test_agent_caps_the_number_of_keys(start_agent: Callable[..., RunningAgent]) -> None:
    keys = [generate_device_key(f"k{i}") for i in range(MAX_AGENT_KEYS + 2)]
    running = start_agent(keys)
    assert ssh_add(running.socket_path, "-L").stdout.splitlines() == [
        k.public.line() for k in keys[:MAX_AGENT_KEYS]
    ]


def test_the_cap_is_what_sshd_tries(sshd: Sshd, start_agent: Callable[..., RunningAgent]) -> None:
    """Why the cap: ssh offers the agent's keys in order, and sshd (MaxAuthTries 6 by
    default) gives up after six refused ones. The last key under the cap still logs in;
    one more key, authorized but offered seventh, never does."""
    keys = [generate_device_key(f"k{i}") for i in range(MAX_AGENT_KEYS + 1)]
    sshd.set_authorized_keys([keys[MAX_AGENT_KEYS - 1].public.line()])
    at_cap = start_agent(keys[:MAX_AGENT_KEYS])
    result = sshd.ssh(at_cap.socket_path, "true")
    assert result.returncode == 0, result.stderr + sshd.log()

    sshd.set_authorized_keys([keys[MAX_AGENT_KEYS].public.line()])
    over = start_agent(keys, max_keys=MAX_AGENT_KEYS + 1)
    result = sshd.ssh(over.socket_path, "true")
    assert result.returncode == 255
    assert "Too many authentication failures" in result.stderr + sshd.log()


@pytest.mark.parametrize("algorithm", ["rsa-sha2-256", "rsa-sha2-512"])
def test_paramiko_signs_with_imported_rsa(
    start_agent: Callable[..., RunningAgent], device_key: AgentKey, algorithm: str
) -> None:
    imported = rsa_key()
    running = start_agent([device_key, imported])
    os.environ["SSH_AUTH_SOCK"] = str(running.socket_path)
    client = paramiko.Agent()
    try:
        keys = client.get_keys()
        assert [k.asbytes() for k in keys] == [device_key.public_blob, imported.public_blob]
        signature = bytes(keys[1].sign_ssh_data(b"data", algorithm))
        verify_signature(imported.public_blob, signature, b"data")
        assert paramiko.RSAKey(data=imported.public_blob).verify_ssh_sig(
            b"data", paramiko.Message(signature)
        )
    finally:
        client.close()
        del os.environ["SSH_AUTH_SOCK"]


def test_paramiko_signs_with_device_key(agent: RunningAgent, device_key: AgentKey) -> None:
    os.environ["SSH_AUTH_SOCK"] = str(agent.socket_path)
    client = paramiko.Agent()
    try:
        (key,) = client.get_keys()
        signature = bytes(key.sign_ssh_data(b"hello"))
        assert paramiko.Ed25519Key(data=device_key.public_blob).verify_ssh_sig(
            b"hello", paramiko.Message(signature)
        )
        with pytest.raises(paramiko.SSHException):
            # paramiko without an algorithm asks an RSA key for SHA-1; here: Ed25519 is fine,
            # so ask for a key the agent does not hold instead.
            paramiko.AgentKey(client, generate_device_key("other").public_blob).sign_ssh_data(b"x")
    finally:
        client.close()
        del os.environ["SSH_AUTH_SOCK"]


def test_ssh_login_through_agent(sshd: Sshd, agent: RunningAgent, device_key: AgentKey) -> None:
    sshd.set_authorized_keys([authorized_keys_line(device_key.public, ("restrict",))])
    result = sshd.ssh(agent.socket_path, "echo", "logged-in")
    assert result.returncode == 0, result.stderr + sshd.log()
    assert result.stdout.strip() == "logged-in"


def test_ssh_login_with_imported_rsa_key(
    sshd: Sshd, start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    imported = rsa_key()
    running = start_agent([device_key, imported])
    sshd.set_authorized_keys([imported.public.line()])
    result = sshd.ssh(running.socket_path, "true")
    assert result.returncode == 0, result.stderr + sshd.log()
    assert "Accepted publickey for root from 127.0.0.1" in sshd.log()
    assert f"RSA {imported.public.fingerprint}" in sshd.log()


def test_login_refused_when_provider_has_no_keys(
    sshd: Sshd, agent: RunningAgent, device_key: AgentKey
) -> None:
    sshd.set_authorized_keys([device_key.public.line()])
    agent.keys.clear()  # the device was removed: the provider returns nothing
    result = sshd.ssh(agent.socket_path, "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_login_refused_for_a_key_sshd_does_not_know(sshd: Sshd, agent: RunningAgent) -> None:
    sshd.set_authorized_keys([generate_device_key("someone-else").public.line()])
    result = sshd.ssh(agent.socket_path, "true")
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_confirm_hook_sees_user_and_proven_host_key(
    sshd: Sshd, start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    seen: list[SignContext] = []

    def confirm(context: SignContext) -> bool:
        seen.append(context)
        return True

    running = start_agent([device_key], confirm=confirm)
    sshd.set_authorized_keys([device_key.public.line()])
    result = sshd.ssh(running.socket_path, "true")
    assert result.returncode == 0, result.stderr + sshd.log()
    assert len(seen) == 1  # one approval, one signature
    assert seen[0].user == "root"
    assert seen[0].host_key == sshd.host_key
    assert seen[0].key == device_key.public
    assert not seen[0].forwarded


def test_confirm_hook_denial_refuses_login(
    sshd: Sshd, start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    running = start_agent([device_key], confirm=lambda context: False)
    sshd.set_authorized_keys([device_key.public.line()])
    result = sshd.ssh(running.socket_path, "true")
    assert result.returncode == 255 and "Permission denied" in result.stderr


@pytest.mark.parametrize("bits", ["256", "384", "521"])
def test_ecdsa_key_with_real_openssh(
    tmp_path: Path,
    sshd: Sshd,
    start_agent: Callable[..., RunningAgent],
    device_key: AgentKey,
    bits: str,
) -> None:
    """An ECDSA key from ssh-keygen (chacha20-poly1305, passphrase): listed by ssh-add,
    signing for ssh-keygen -Y sign -U (checked by ssh-keygen -Y verify) and logging in."""
    path = tmp_path / "id_ecdsa"
    made = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-b", bits, "-N", "passphrase", "-C", "ec@old",
         "-Z", "chacha20-poly1305@openssh.com", "-f", str(path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = load_private_key_file(path, b"passphrase")
    running = start_agent([device_key, key])
    env = dict(os.environ, SSH_AUTH_SOCK=str(running.socket_path))
    listed = ssh_add(running.socket_path, "-L").stdout.splitlines()
    assert listed == [device_key.public.line(), path.with_name("id_ecdsa.pub").read_text().strip()]
    assert "(ECDSA)" in ssh_add(running.socket_path, "-l").stdout

    message = tmp_path / "message"
    message.write_text("signed through the agent\n")
    signed = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "file", "-f", f"{path}.pub", "-U", str(message)],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"ec@old {key.public.line()}\n")
    with message.open("rb") as data:
        verified = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "ec@old", "-n", "file",
             "-s", f"{message}.sig"],
            stdin=data, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert verified.returncode == 0, verified.stderr + verified.stdout

    sshd.set_authorized_keys([key.public.line()])
    only = ["-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={path}.pub"]
    result = sshd.ssh(running.socket_path, "echo", "ecdsa", options=only)
    assert (result.returncode, result.stdout) == (0, "ecdsa\n"), result.stderr + sshd.log()
    assert f"ECDSA {key.public.fingerprint}" in sshd.log()
