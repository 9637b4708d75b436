"""``keystead passwords get`` answered by the unlock agent: the same output and exit status as
the full CLI gives, without the CLI's imports; and the full CLI again once locked."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

LAUNCHER = [sys.executable, "-m", "keystead.core.launch"]  # what the `keystead` script runs
FULL_CLI = [sys.executable, "-m", "keystead.core.cli"]  # the Click CLI, never the agent
SECRET = 'tr0ub4dor, "&" 3 ü'


def _run(
    cmd: list[str], env: dict[str, str], *args: str, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd
    )


def _imports(home, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:  # type: ignore[no-untyped-def]
    """Run the launcher with -X importtime: its result, and the modules it imported."""
    env = home.env()
    del env["KEYSTEAD_PASSPHRASE"]
    proc = _run([sys.executable, "-X", "importtime", "-m", "keystead.core.launch"], env, *args)
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return proc, modules


@pytest.fixture
def unlocked(make_account):  # type: ignore[no-untyped-def]
    acct = make_account("quick")
    home = acct.admin
    home.run("passwords", "add", "https://example.com/login", "-u", "alice", input=SECRET + "\n")
    home.run("passwords", "add", "https://site.test/", "-u", "one", input="first\n")
    home.run("passwords", "add", "https://site.test/", "-u", "two", input="second\n")
    home.run("unlock", "--for", "5m")
    yield home
    home.run("lock")


CASES = [
    ("https://example.com/login",),
    ("https://example.com/other", "--json"),
    ("https://site.test/", "-u", "two"),
    ("https://site.test/",),  # ambiguous: exit 1, one line
    ("https://nowhere.test/",),  # not found (after a sync): exit 1, one line
    ("--bogus-option", "x"),  # a usage error from Click: exit 2
    (),
]


@pytest.mark.parametrize("args", CASES)
def test_the_agent_answers_as_the_full_cli_does(unlocked, args) -> None:  # type: ignore[no-untyped-def]
    agent, modules = _imports(unlocked, "passwords", "get", *args)
    assert "click" not in modules and "keystead.core.cli" not in modules  # the agent ran it
    full = _run(FULL_CLI, unlocked.env(), "passwords", "get", *args)
    stderr = "".join(
        line + "\n" for line in agent.stderr.splitlines() if not line.startswith("import time:")
    )
    assert (agent.returncode, agent.stdout, stderr) == (full.returncode, full.stdout, full.stderr)
    if args == CASES[0]:
        assert agent.stdout == SECRET + "\n"


def test_other_commands_still_go_through_the_full_cli(unlocked) -> None:  # type: ignore[no-untyped-def]
    listed, modules = _imports(unlocked, "passwords", "list", "--no-sync")
    assert listed.returncode == 0 and "click" in modules
    assert "example.com" in listed.stdout


def test_a_relative_home_and_parallel_lookups(unlocked) -> None:  # type: ignore[no-untyped-def]
    env = unlocked.env(KEYSTEAD_HOME=unlocked.path.name)
    del env["KEYSTEAD_PASSPHRASE"]
    results: list[subprocess.CompletedProcess[str]] = []

    def one() -> None:
        results.append(
            _run(
                LAUNCHER,
                env,
                "passwords",
                "get",
                "https://example.com/login",
                cwd=str(unlocked.path.parent),
            )
        )

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(r.returncode, r.stdout) for r in results] == [(0, SECRET + "\n")] * 8


def test_once_locked_the_full_cli_answers_and_wants_the_passphrase(unlocked) -> None:  # type: ignore[no-untyped-def]
    unlocked.run("lock")
    locked, modules = _imports(unlocked, "passwords", "get", "https://example.com/login")
    assert "click" in modules
    assert locked.returncode == 1 and locked.stdout == ""
    assert "keystead: the keystore is locked" in locked.stderr
    assert unlocked.run("passwords", "get", "https://example.com/login").stdout == SECRET + "\n"


def test_a_dead_agents_socket_is_ignored(make_account) -> None:  # type: ignore[no-untyped-def]
    home = make_account("quick").admin
    home.run("passwords", "add", "https://example.com/", "-u", "a", input="pw\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(home.path / "agent.sock"))  # left behind, as by a killed agent
    got = home.run("passwords", "get", "https://example.com/")
    assert got.stdout == "pw\n"


def test_stdout_and_stderr_keep_their_order(unlocked) -> None:  # type: ignore[no-untyped-def]
    env = unlocked.env()
    del env["KEYSTEAD_PASSPHRASE"]
    merged = subprocess.run(
        [*LAUNCHER, "passwords", "get", "https://example.com/login"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert merged.stdout == (
        "keystead: matched https://example.com/login (alice) by exact\n" + SECRET + "\n"
    )
