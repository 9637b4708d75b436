"""The wired adapter end to end: real sshd, real ssh/ssh-add, paramiko, the real service and CLI.

sshd's AuthorizedKeysCommand runs ``keystead ssh authorized-keys ACCOUNT --server URL`` in
an empty environment (no KEYSTEAD_PASSPHRASE, no home); the agent is ``keystead ssh agent``
in a device home, reached only through SSH_AUTH_SOCK.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from keystead.adapters.ssh._keys import AgentKey
from keystead.adapters.ssh._verify import verify_signature
from ssh_harness import Sshd

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "keystead.core.cli"]


@pytest.fixture
def acct(make_account: Callable[..., Any]) -> Any:
    return make_account("ssh")


@pytest.fixture
def ak_cache(tmp_path: Path) -> Path:
    return tmp_path / "ak-cache"


@pytest.fixture
def authorized_keys_command(acct: Any, ak_cache: Path) -> str:
    cli = " ".join(CLI)
    return (
        f"exec env -i PATH=/usr/bin:/bin KEYSTEAD_SSH_CACHE='{ak_cache}' {cli} "
        f"ssh authorized-keys {acct.name} --server {acct.service.url}"
    )


def authorized_keys(acct: Any, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "KEYSTEAD_SSH_CACHE": str(cache)}
    return subprocess.run(
        [*CLI, "ssh", "authorized-keys", acct.name, "--server", acct.service.url, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


class Agent:
    """A ``keystead ssh agent`` process in a device home."""

    def __init__(self, home: Any, *args: str) -> None:
        self.proc = home.spawn("ssh", "agent", "--refresh", "0.5", *args)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("SSH_AUTH_SOCK="):
            self.proc.kill()
            raise AssertionError(line + self.proc.communicate()[1])  # closes the pipes too
        self.socket = line.split("=", 1)[1].strip()

    def ssh_add(self, flag: str = "-L") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh-add", flag],
            capture_output=True,
            text=True,
            timeout=10,
            env=dict(os.environ, SSH_AUTH_SOCK=self.socket),
        )

    def listed(self) -> list[str]:
        out = self.ssh_add("-L")
        return (
            [" ".join(x.split()[:2]) for x in out.stdout.splitlines()]
            if out.returncode == 0
            else []
        )

    def wait_listed(self, want: Callable[[list[str]], bool], timeout: float = 15) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.listed()
            if want(got) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err
        assert not os.path.exists(self.socket)
        return err


@pytest.fixture
def agents() -> Iterator[Callable[..., Agent]]:
    started: list[Agent] = []

    def start(home: Any, *args: str) -> Agent:
        started.append(Agent(home, *args))
        return started[-1]

    yield start
    for a in started:
        if a.proc.poll() is None:
            a.proc.kill()
        a.proc.communicate()


def key_part(line: str) -> str:
    return " ".join(line.split()[:2])


def test_device_key_login_ssh_add_and_paramiko(
    acct: Any, sshd: Sshd, ak_cache: Path, agents: Callable[..., Agent]
) -> None:
    pub = acct.admin.run("ssh", "public-key").stdout.strip()
    listed = authorized_keys(acct, ak_cache)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{key_part(pub)} keystead:{acct.name}:laptop"]
    agent = agents(acct.admin)
    assert agent.listed() == [key_part(pub)]
    assert "(ED25519)" in agent.ssh_add("-l").stdout
    result = sshd.ssh(agent.socket, "echo", "hello")
    assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr + sshd.log()
    os.environ["SSH_AUTH_SOCK"] = agent.socket
    client = paramiko.Agent()
    try:
        (key,) = client.get_keys()
        signature = bytes(key.sign_ssh_data(b"paramiko"))
        verify_signature(key.asbytes(), signature, b"paramiko")
    finally:
        client.close()
        del os.environ["SSH_AUTH_SOCK"]
    assert "Traceback" not in agent.stop()


def test_pinned_fingerprint(acct: Any, ak_cache: Path) -> None:
    fpr = acct.admin.json("account", "show", "--json")["account_fingerprint"]
    assert authorized_keys(acct, ak_cache, "--fingerprint", fpr).returncode == 0
    wrong = authorized_keys(acct, ak_cache, "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 5 and wrong.stdout == ""
    assert "fingerprint" in wrong.stderr


def test_joined_device_logs_in_until_removed(
    acct: Any, sshd: Sshd, ak_cache: Path, agents: Callable[..., Agent]
) -> None:
    phone = acct.join("desktop", scopes=["ssh"])
    agent = agents(phone)
    assert sshd.ssh(agent.socket, "true").returncode == 0, sshd.log()
    assert f"keystead:{acct.name}:desktop" in authorized_keys(acct, ak_cache).stdout
    served = agent.listed()
    acct.admin.run("device", "remove", "desktop")
    # sshd side: the verified list no longer has it.
    after = authorized_keys(acct, ak_cache)
    assert after.returncode == 0 and "desktop" not in after.stdout
    assert sshd.ssh(agent.socket, "true").returncode == 255
    # agent side, on its own: it stops serving within a few seconds.
    assert served and agent.wait_listed(lambda keys: keys == [], timeout=10) == []
    assert "no identities" in agent.ssh_add("-l").stdout


def test_login_while_the_service_is_down(
    acct: Any, sshd: Sshd, ak_cache: Path, agents: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = agents(acct.admin)
    assert sshd.ssh(agent.socket, "true").returncode == 0, sshd.log()  # fills the cache
    acct.service.stop()
    try:
        time.sleep(1.5)  # the agent has noticed the outage at least once
        result = sshd.ssh(agent.socket, "echo", "offline")
        assert result.stdout == "offline\n", result.stderr + sshd.log()
        cached = authorized_keys(acct, ak_cache)
        assert cached.returncode == 0 and "unreachable" in cached.stderr
        assert f"keystead:{acct.name}:laptop" in cached.stdout
        empty = authorized_keys(acct, tmp_path / "no-cache")
        assert empty.returncode == 1 and empty.stdout == ""
    finally:
        acct.service.start()


def write_rsa_key(path: Path) -> AgentKey:
    key = AgentKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "old-laptop")
    path.write_bytes(key.private_openssh())
    path.chmod(0o600)
    path.with_name(path.name + ".pub").write_text(key.public.line() + "\n")
    return key


def test_imported_key_synced_to_another_device(
    acct: Any, sshd: Sshd, ak_cache: Path, agents: Callable[..., Agent], tmp_path: Path
) -> None:
    key_file = tmp_path / "id_rsa"
    imported = write_rsa_key(key_file)
    out = acct.admin.run("ssh", "import", str(key_file)).stdout
    assert imported.public.fingerprint in out
    listed = authorized_keys(acct, ak_cache).stdout.splitlines()
    assert listed[1] == (
        f"{key_part(imported.public.line())} keystead:{acct.name}:imported:old-laptop"
    )
    other = acct.join("desktop", scopes=["ssh"])
    agent = agents(other)
    served = agent.wait_listed(lambda keys: len(keys) == 2)
    assert served[1] == key_part(imported.public.line())
    only_imported = ["-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={key_file}.pub"]
    result = sshd.ssh(agent.socket, "true", options=only_imported)
    assert result.returncode == 0, result.stderr + sshd.log()
    assert imported.public.fingerprint in sshd.log()
    # Removing it (admin) takes it off sshd's list and off every agent.
    acct.admin.run("ssh", "remove", imported.public.fingerprint)
    assert "imported" not in authorized_keys(acct, ak_cache).stdout
    assert len(agent.wait_listed(lambda keys: len(keys) == 1)) == 1


def test_member_cannot_import(acct: Any, tmp_path: Path) -> None:
    other = acct.join("desktop", scopes=["ssh"])
    write_rsa_key(tmp_path / "id_rsa")
    result = other.run("ssh", "import", str(tmp_path / "id_rsa"), check=False)
    assert result.returncode == 1 and "admin" in result.stderr


def known_hosts_options(home: Any) -> list[str]:
    cli = " ".join(CLI)
    return [
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"KnownHostsCommand=/usr/bin/env KEYSTEAD_HOME={home.path} {cli} "
        "ssh known-hosts command %H %K",
    ]


def test_known_hosts_synced_and_used_by_ssh(
    acct: Any, sshd: Sshd, agents: Callable[..., Agent], tmp_path: Path
) -> None:
    other = acct.join("desktop", scopes=["ssh"])
    agent = agents(acct.admin)
    options = known_hosts_options(other)
    assert sshd.ssh(agent.socket, "true", options=options).returncode == 255  # unknown host
    existing = tmp_path / "known_hosts"
    existing.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key.line()}\nnot a line\n")
    acct.admin.run("ssh", "known-hosts", "import", str(existing))
    other.run("ssh", "known-hosts", "sync")
    result = sshd.ssh(agent.socket, "true", options=options)
    assert result.returncode == 0, result.stderr
    listed = other.run("ssh", "known-hosts", "list").stdout
    assert sshd.host_key.line().split()[1] in listed
    acct.admin.run("ssh", "known-hosts", "rm", "127.0.0.1", "--port", str(sshd.port))
    other.run("ssh", "known-hosts", "sync")
    assert sshd.ssh(agent.socket, "true", options=options).returncode == 255


def test_known_hosts_add_then_offline_lookup(
    acct: Any, sshd: Sshd, agents: Callable[..., Agent]
) -> None:
    acct.admin.run(
        "ssh", "known-hosts", "add", "127.0.0.1", "--port", str(sshd.port), sshd.host_key.line()
    )
    agent = agents(acct.admin)  # the agent keeps the file fresh too
    options = known_hosts_options(acct.admin)
    assert sshd.ssh(agent.socket, "true", options=options).returncode == 0  # caches sshd's list
    acct.service.stop()
    try:
        result = sshd.ssh(agent.socket, "true", options=options)
        assert result.returncode == 0, result.stderr
    finally:
        acct.service.start()


def pending_prompts(phone: Any, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prompts: list[dict[str, Any]] = json.loads(phone.run("confirm", "list", "--json").stdout)
        if prompts:
            return prompts
        time.sleep(0.3)
    raise AssertionError("no prompt arrived")


def ssh_in_background(sshd: Sshd, agent: Agent, *command: str) -> subprocess.Popen[str]:
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-p",
        str(sshd.port),
        "root@127.0.0.1",
        *command,
    ]
    return subprocess.Popen(
        argv,
        env=dict(os.environ, SSH_AUTH_SOCK=agent.socket),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_confirm_each_signature_on_the_phone(
    acct: Any, sshd: Sshd, agents: Callable[..., Agent]
) -> None:
    phone = acct.join("phone", scopes=["confirm"])
    acct.admin.run(
        "ssh", "known-hosts", "add", "127.0.0.1", "--port", str(sshd.port), sshd.host_key.line()
    )
    agent = agents(acct.admin, "--confirm", "--confirm-wait", "30")
    login = ssh_in_background(sshd, agent, "echo", "approved")
    (prompt,) = pending_prompts(phone)
    assert "'root'" in prompt["message"] and f"[127.0.0.1]:{sshd.port}" in prompt["message"]
    assert sshd.host_key.fingerprint in prompt["message"]
    phone.run("confirm", "approve", prompt["id"])
    out, err = login.communicate(timeout=30)
    assert (login.returncode, out) == (0, "approved\n"), err
    # The approval is spent: the next login asks again, and a denial refuses it.
    login = ssh_in_background(sshd, agent, "true")
    (prompt2,) = pending_prompts(phone)
    assert prompt2["id"] != prompt["id"]
    phone.run("confirm", "deny", prompt2["id"])
    login.communicate(timeout=30)
    assert login.returncode == 255


def ssh_keygen(path: Path, *args: str) -> str:
    """A key file made by the real ssh-keygen; returns its public line (type and key)."""
    done = subprocess.run(
        ["ssh-keygen", "-q", "-C", path.name, *args, "-f", str(path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return key_part(path.with_name(path.name + ".pub").read_text())


def test_ecdsa_from_stdin_served_from_the_first_answer_and_logs_in(
    acct: Any, sshd: Sshd, ak_cache: Path, agents: Callable[..., Agent], tmp_path: Path
) -> None:
    """``keystead passwords show NAME --private-key | keystead ssh import -``, with an ECDSA
    PEM key: every agent lists it in its very first answer, and sshd lets it in."""
    path = tmp_path / "id_ecdsa"
    public = ssh_keygen(path, "-t", "ecdsa", "-b", "384", "-m", "PEM", "-N", "")
    out = acct.admin.run(
        "ssh", "import", "-", "--comment", "from-vault", input=path.read_text()
    ).stdout
    assert "ecdsa-sha2-nistp384" in out and "from-vault" in out
    listed = authorized_keys(acct, ak_cache).stdout.splitlines()
    assert listed[1] == f"{public} keystead:{acct.name}:imported:from-vault"

    other = acct.join("desktop", scopes=["ssh"])
    fresh = agents(other)  # a device that never synced the ssh collection
    assert fresh.listed()[1:] == [public]  # first answer, no waiting
    again = agents(acct.admin)  # a device with it in its cache
    assert again.listed()[1:] == [public]

    only = ["-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={path}.pub"]
    result = sshd.ssh(fresh.socket, "echo", "ecdsa", options=only)
    assert (result.returncode, result.stdout) == (0, "ecdsa\n"), result.stderr + sshd.log()
    assert "ECDSA" in sshd.log()


def test_import_errors_are_one_line(acct: Any, tmp_path: Path) -> None:
    gcm = tmp_path / "id_gcm"
    ssh_keygen(gcm, "-t", "ed25519", "-N", "right phrase", "-Z", "aes256-gcm@openssh.com")
    wrong = acct.admin.run(
        "ssh", "import", str(gcm), "--passphrase-stdin", input="wrong phrase\n", check=False
    )
    assert wrong.returncode == 1
    assert wrong.stderr == "keystead: wrong passphrase for the private key\n"

    plain = tmp_path / "plain"
    ssh_keygen(plain, "-t", "ecdsa", "-m", "PEM", "-N", "")
    camellia = tmp_path / "camellia"
    subprocess.run(
        ["openssl", "ec", "-in", str(plain), "-camellia256", "-passout", "pass:right phrase",
         "-out", str(camellia)], check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    refused = acct.admin.run(
        "ssh", "import", str(camellia), "--passphrase-stdin", input="right phrase\n", check=False
    )
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "'CAMELLIA-256-CBC'" in refused.stderr and "not supported" in refused.stderr

    piped = acct.admin.run("ssh", "import", "-", input=gcm.read_text(), check=False)
    assert piped.returncode == 1 and len(piped.stderr.splitlines()) == 1
    assert "--passphrase-file" in piped.stderr
    phrase = tmp_path / "phrase"
    phrase.write_text("right phrase\n")
    ok = acct.admin.run("ssh", "import", "-", "--passphrase-file", str(phrase),
                        input=gcm.read_text())  # fmt: skip
    assert "ssh-ed25519" in ok.stdout
    for result in (wrong, refused, piped):
        assert "Traceback" not in result.stderr


def test_one_key_limit_for_import_keys_and_agent(
    acct: Any, ak_cache: Path, agents: Callable[..., Agent], tmp_path: Path
) -> None:
    from keystead.adapters.ssh._keys import MAX_AGENT_KEYS, MAX_IMPORTED_KEYS

    publics = []
    for i in range(MAX_IMPORTED_KEYS + 1):
        path = tmp_path / f"id_{i}"
        publics.append(ssh_keygen(path, "-t", "ecdsa", "-N", ""))
        result = acct.admin.run("ssh", "import", str(path), check=False)
        if i < MAX_IMPORTED_KEYS:
            assert result.returncode == 0, result.stderr
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert f"the limit is {MAX_IMPORTED_KEYS}" in result.stderr
    assert "MaxAuthTries" in result.stderr
    again = acct.admin.run("ssh", "import", str(tmp_path / "id_0"))  # the same key: no new one
    assert again.returncode == 0
    listed = acct.admin.json("ssh", "keys", "--json")
    assert [k["kind"] for k in listed] == ["device"] + ["imported"] * MAX_IMPORTED_KEYS
    served = agents(acct.admin).listed()
    assert len(served) == MAX_AGENT_KEYS
    assert sorted(served[1:]) == sorted(publics[:MAX_IMPORTED_KEYS])
    assert [key_part(k["line"]) for k in listed] == served  # the same keys, in the same order
    published = authorized_keys(acct, ak_cache).stdout.splitlines()
    assert sorted(key_part(x) for x in published[1:]) == sorted(served[1:])


def test_encrypted_key_on_stdin_asks_on_the_terminal(acct: Any, tmp_path: Path) -> None:
    """``ssh import -`` under a real terminal (util-linux ``script``): the key comes from
    stdin, its passphrase is asked on /dev/tty."""
    key = tmp_path / "id"
    public = ssh_keygen(key, "-t", "ecdsa", "-N", "right phrase")
    command = f"{shlex.join(CLI)} ssh import - < {shlex.quote(str(key))}"
    proc = subprocess.Popen(
        ["script", "-qec", command, "/dev/null"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=acct.admin.env(),
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    seen = b""
    while b"Key passphrase:" not in seen:  # typed before the prompt, getpass would flush it
        chunk = proc.stdout.read1(100)
        assert chunk, seen
        seen += chunk
    proc.stdin.write(b"right phrase\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, seen + out
    assert b"imported" in out
    lines = [k["line"] for k in acct.admin.json("ssh", "keys", "--json")]
    assert public in [key_part(line) for line in lines]


OLD_VERSION_IMPORT = """
import sys
from keystead.adapters.ssh._device import SshItems
from keystead.adapters.ssh._items import encode_key, key_item_id
from keystead.adapters.ssh._keys import generate_device_key
from keystead.core.cli import open_device

with open_device() as dev:
    items = SshItems(dev)
    items.sync()
    for i in range(int(sys.argv[1])):
        key = generate_device_key(f"old-{i}")
        items.collection.put(key_item_id(key), encode_key(key))
"""


def test_keys_past_the_limit_from_an_older_version_are_marked_not_served(
    acct: Any, ak_cache: Path, agents: Callable[..., Agent]
) -> None:
    """An older version accepted more imported keys than the agent serves. Now ``ssh keys``,
    the agent and the published list agree on the same first ones, and say so."""
    from keystead.adapters.ssh._keys import MAX_AGENT_KEYS, MAX_IMPORTED_KEYS

    extra = 2
    done = subprocess.run(
        [sys.executable, "-c", OLD_VERSION_IMPORT, str(MAX_IMPORTED_KEYS + extra)],
        env=acct.admin.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = acct.admin.run("ssh", "keys", "--json")
    keys = json.loads(listed.stdout)
    kinds = [k["kind"] for k in keys]
    assert kinds == ["device"] + ["imported"] * MAX_IMPORTED_KEYS + ["unserved"] * extra
    assert f"over the limit of {MAX_AGENT_KEYS} keys" in listed.stderr
    served = [key_part(k["line"]) for k in keys if k["kind"] != "unserved"]
    assert agents(acct.admin).listed() == served
    # Removing a served key republishes: the first unserved one moves up, everywhere.
    acct.admin.run("ssh", "remove", keys[1]["fingerprint"])
    after = acct.admin.json("ssh", "keys", "--json")
    assert [k["kind"] for k in after].count("unserved") == extra - 1
    published = authorized_keys(acct, ak_cache).stdout.splitlines()[1:]
    assert sorted(key_part(x) for x in published) == sorted(
        key_part(k["line"]) for k in after if k["kind"] == "imported"
    )
