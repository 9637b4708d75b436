"""The unlock agent's socket protocol, served in a thread: key, quick commands, lock."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from keystead.core import unlock
from keystead.core.unlock import AgentLost, QuickResult, fetch_key, lock, run_quick, serve

KEY = bytes(range(32))


class _Echo:
    """A runner whose one quick command, ``echo``, prints its arguments (``slow``: after
    2.5 s, longer than the client's connect timeout; ``crash``: never answers)."""

    def is_quick(self, argv: Sequence[str]) -> bool:
        return argv[:1] == ["echo"]

    def __call__(self, argv: list[str], env: dict[str, str]) -> QuickResult:
        if argv[1:2] == ["slow"]:
            time.sleep(2.5)
        if argv[1:2] == ["crash"]:
            raise RuntimeError("the agent dies mid-command")
        out = os.fsencode(" ".join(argv[1:])) + b"\n"
        return 3, [(2, b"before "), (1, out), (2, repr(sorted(env.items())).encode())]


_echo = _Echo()


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(unlock, "_resident", None)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    thread = threading.Thread(target=serve, args=(home, KEY, 30, _echo), daemon=True)
    thread.start()
    for _ in range(100):
        if Path(unlock.agent_socket(home)).exists():
            break
        time.sleep(0.01)
    # the agent's own process would get its key without a round trip; a client must ask
    monkeypatch.setattr(unlock, "_resident", None)
    yield home
    lock(home)
    thread.join(5)
    assert not thread.is_alive()


def _raw(home: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(unlock.agent_socket(home))
        s.sendall(data)
        return s.recv(64)


def test_it_hands_out_the_key_and_runs_quick_commands(
    agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("KEYSTEAD_")]:
        monkeypatch.delenv(name)  # e.g. the PostgreSQL suite's KEYSTEAD_TEST_DATABASE_URL
    monkeypatch.setenv("KEYSTEAD_RP_TOKEN", "t")
    monkeypatch.setenv("KEYSTEAD_PASSPHRASE", "never sent")
    assert fetch_key(agent) == KEY
    assert run_quick(agent, ["echo", "a", "b"]) == (  # the chunks' order is kept
        3,
        [(2, b"before "), (1, b"a b\n"), (2, repr([("KEYSTEAD_RP_TOKEN", "t")]).encode())],
    )


def test_arguments_and_environment_cross_byte_for_byte(
    agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYSTEAD_X", "a=b=c ü")
    odd = ["echo", "", "a=b", "ü 😀", "\udcff", "--x=y"]  # \udcff: a non-UTF-8 byte
    code, chunks = run_quick(agent, odd)  # type: ignore[misc]
    assert chunks[1] == (1, os.fsencode(" ".join(odd[1:])) + b"\n")
    assert ("KEYSTEAD_X", "a=b=c ü") in eval(chunks[2][1])


def test_a_command_that_is_not_quick_is_left_to_the_caller(agent: Path) -> None:
    assert run_quick(agent, ["passwords", "add"]) is None
    assert fetch_key(agent) == KEY  # and the agent goes on


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"R" + struct.pack(">I", 9) + b"not json!",
        b"R" + struct.pack(">I", 2) + b"[]",
        b"R" + struct.pack(">I", 9) + struct.pack(">I", 9) + b"echo\0",  # more args than fields
        b"R" + struct.pack(">I", 10) + struct.pack(">I", 1) + b"echo\0x\0",  # x: not NAME=value
        b"R" + struct.pack(">I", 1 << 30),
        b"R" + struct.pack(">I", 100) + b"short",  # and then the client goes away
        b"?",
    ],
)
def test_a_malformed_request_is_refused_and_the_agent_goes_on(
    agent: Path, request_bytes: bytes
) -> None:
    assert _raw(agent, request_bytes) in (b"N", b"")
    assert run_quick(agent, ["echo", "still", "here"])[1][1] == (1, b"still here\n")  # type: ignore[index]


def test_a_slow_command_is_waited_for_and_the_key_served_meanwhile(agent: Path) -> None:
    answers: list[object] = []
    slow = threading.Thread(target=lambda: answers.append(run_quick(agent, ["echo", "slow"])))
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert fetch_key(agent) == KEY
    assert time.monotonic() - started < 2.0  # not after the 2.5 s command
    slow.join()
    assert answers[0] is not None and answers[0][1][1] == (1, b"slow\n")  # type: ignore[index]


def test_an_accepted_command_that_gets_no_answer_is_not_run_again(agent: Path) -> None:
    with pytest.raises(AgentLost):
        run_quick(agent, ["echo", "crash"])
    assert fetch_key(agent) == KEY  # the agent itself goes on


def test_no_agent_means_none(tmp_path: Path) -> None:
    assert fetch_key(tmp_path) is None and run_quick(tmp_path, ["echo"]) is None
    stale = unlock.agent_socket(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(stale)  # a socket file nobody listens on: a crashed agent's
    assert fetch_key(tmp_path) is None and run_quick(tmp_path, ["echo"]) is None
    assert not lock(tmp_path)


def test_lock_removes_the_socket_at_once(agent: Path) -> None:
    assert lock(agent)
    assert not Path(unlock.agent_socket(agent)).exists()
    assert fetch_key(agent) is None


def test_an_old_agent_leaving_does_not_remove_a_newer_agents_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer_key = bytes(32)
    old = threading.Thread(target=serve, args=(tmp_path, KEY, 0.5, _echo), daemon=True)
    old.start()
    time.sleep(0.1)
    newer = threading.Thread(target=serve, args=(tmp_path, newer_key, 30, _echo), daemon=True)
    newer.start()  # replaces the old one's socket, as `keystead unlock` again would
    time.sleep(0.1)
    monkeypatch.setattr(unlock, "_resident", None)
    old.join(5)  # its time is up: it leaves
    assert fetch_key(tmp_path) == newer_key
    assert lock(tmp_path)
    newer.join(5)
    assert not newer.is_alive()


def test_a_command_running_when_time_runs_out_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = threading.Thread(target=serve, args=(tmp_path, KEY, 1.0, _echo), daemon=True)
    short.start()
    time.sleep(0.2)
    monkeypatch.setattr(unlock, "_resident", None)
    answers: list[object] = []
    slow = threading.Thread(target=lambda: answers.append(run_quick(tmp_path, ["echo", "slow"])))
    slow.start()
    time.sleep(1.3)  # past the agent's time, before the command's end
    assert short.is_alive()  # the agent process would still be there to answer
    assert fetch_key(tmp_path) is None  # but it takes nothing new
    slow.join()
    assert answers[0][1][1] == (1, b"slow\n")  # type: ignore[index]
    short.join(5)
    assert not short.is_alive()
