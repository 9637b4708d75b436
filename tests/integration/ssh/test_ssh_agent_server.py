"""The agent's socket server under bad and concurrent clients (raw sockets, no OpenSSH)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from keystead.adapters.ssh import _agent_protocol as proto
from keystead.adapters.ssh import _wire
from keystead.adapters.ssh._keys import AgentKey, generate_device_key
from keystead.adapters.ssh._verify import verify_signature
from keystead.adapters.ssh.agent import AgentSocketError, SshAgent
from ssh_harness import RunningAgent

FAILURE = proto.encode_failure()


def connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(path))
    return s


def read_frame(s: socket.socket) -> bytes:
    """One framed reply, or b"" when the agent closed the connection."""
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:  # closed with our bytes unread: also a close
            return b""
        if not chunk:
            return b""
        data += chunk
    return data


def identities(path: Path) -> list[tuple[bytes, str]]:
    with connect(path) as s:
        s.sendall(proto.encode_request_identities())
        return proto.parse_identities_answer(read_frame(s)[4:])


def test_socket_is_0600_in_a_0700_folder(agent: RunningAgent) -> None:
    assert stat.S_IMODE(agent.socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(agent.socket_path.parent.stat().st_mode) == 0o700


def test_shutdown_removes_socket_and_folder(device_key: AgentKey) -> None:
    agent = SshAgent(lambda: [device_key])
    path = agent.start()
    with connect(path) as client:  # a served, now idle client must not keep the agent alive
        client.sendall(proto.encode_request_identities())
        assert read_frame(client)
        agent.shutdown()
        assert not path.exists() and not path.parent.exists()
        assert client.recv(1) == b""


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x00\x00\x00",  # zero-length frame
        (256 * 1024 + 1).to_bytes(4, "big") + b"\x0b",  # over 256 KiB
        b"\xff\xff\xff\xff",
    ],
)
def test_bad_frame_length_closes_only_that_client(agent: RunningAgent, bad: bytes) -> None:
    with connect(agent.socket_path) as s:
        s.sendall(bad)
        assert read_frame(s) == b""
    assert len(identities(agent.socket_path)) == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"\x11",  # ADD_IDENTITY, unsupported
        b"\x63",  # unknown type
        b"\x0b\x00",  # REQUEST_IDENTITIES with trailing garbage
        b"\x0d\x00\x00\x00\x05abc",  # truncated SIGN_REQUEST
        proto.encode_sign_request(generate_device_key("x").public_blob, b"d")[4:],  # not held
        b"\x1b\x00\x00\x00\x05query",  # unknown extension
        b"\x1b\x00\x00\x00\x18session-bind@openssh.com\x00",  # malformed bind
        b"\x1b"
        + _wire.string(proto.SESSION_BIND)
        + _wire.string(  # compressed-point host key
            _wire.string("ecdsa-sha2-nistp256")
            + _wire.string("nistp256")
            + _wire.string(b"\x02" + b"\x11" * 32)
        )
        + _wire.string(b"sid")
        + _wire.string(b"sig")
        + _wire.boolean(False),
    ],
    ids=lambda p: f"type{p[0]}-{len(p)}b",  # stable: a parallel run's workers compare ids
)
def test_bad_messages_get_failure_and_connection_stays(agent: RunningAgent, payload: bytes) -> None:
    with connect(agent.socket_path) as s:
        s.sendall(len(payload).to_bytes(4, "big") + payload)
        assert read_frame(s) == FAILURE
        s.sendall(proto.encode_request_identities())
        assert len(proto.parse_identities_answer(read_frame(s)[4:])) == 1


def test_valid_frame_then_garbage(agent: RunningAgent, device_key: AgentKey) -> None:
    with connect(agent.socket_path) as s:
        s.sendall(proto.encode_sign_request(device_key.public_blob, b"x") + b"\xff\xff\xff\xffjunk")
        reply = read_frame(s)
        verify_signature(device_key.public_blob, proto.parse_sign_response(reply[4:]), b"x")
        assert read_frame(s) == b""  # then closed


def test_frame_split_byte_by_byte(agent: RunningAgent, device_key: AgentKey) -> None:
    with connect(agent.socket_path) as s:
        for b in proto.encode_sign_request(device_key.public_blob, b"slow"):
            s.send(bytes([b]))
        proto.parse_sign_response(read_frame(s)[4:])


def test_truncated_frame_then_hangup_does_not_disturb_others(agent: RunningAgent) -> None:
    stalled = connect(agent.socket_path)
    stalled.sendall(b"\x00\x00\x01\x00\x0d")  # promises 256 bytes, sends one
    assert len(identities(agent.socket_path)) == 1  # served while the other stalls
    stalled.close()
    assert len(identities(agent.socket_path)) == 1


def test_concurrent_clients(start_agent: Callable[..., RunningAgent]) -> None:
    keys = [generate_device_key(f"k{i}") for i in range(3)]
    running = start_agent(keys)
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            key = keys[n % 3]
            with connect(running.socket_path) as s:
                for i in range(50):
                    data = f"{n}-{i}".encode()
                    s.sendall(proto.encode_sign_request(key.public_blob, data))
                    sig = proto.parse_sign_response(read_frame(s)[4:])
                    verify_signature(key.public_blob, sig, data)
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_provider_change_takes_effect(agent: RunningAgent, device_key: AgentKey) -> None:
    with connect(agent.socket_path) as s:
        s.sendall(proto.encode_sign_request(device_key.public_blob, b"a"))
        proto.parse_sign_response(read_frame(s)[4:])
        agent.keys.clear()  # device removed; cache_seconds=0 in this fixture
        s.sendall(proto.encode_sign_request(device_key.public_blob, b"b"))
        assert read_frame(s) == FAILURE


def test_explicit_socket_path_checks_its_folder(tmp_path: Path, device_key: AgentKey) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o755)
    open_folder.chmod(0o755)
    with pytest.raises(AgentSocketError):
        SshAgent(lambda: [device_key]).bind(open_folder / "agent.sock")

    fresh = tmp_path / "private" / "agent.sock"
    first = SshAgent(lambda: [device_key])
    first.start(fresh)
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
    with pytest.raises(AgentSocketError, match="already listening"):
        SshAgent(lambda: [device_key]).bind(fresh)
    first.shutdown()

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(fresh))  # a dead agent's socket: replaced
    stale.close()
    second = SshAgent(lambda: [device_key])
    second.start(fresh)
    assert len(identities(fresh)) == 1
    second.shutdown()

    fresh.write_text("not a socket")
    with pytest.raises(AgentSocketError, match="not a socket"):
        SshAgent(lambda: [device_key]).bind(fresh)
    os.unlink(fresh)


HOLDER = """
import socket, sys, time
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    socks.append(s)
print("connected", flush=True)
sys.stdin.read()  # hold them, idle, until told to stop
"""


def hold_idle(path: Path, count: int) -> subprocess.Popen[str]:
    """Another process holding ``count`` idle connections to the agent."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "connected\n"
    return proc


def test_many_idle_clients_do_not_stop_new_ones(agent: RunningAgent) -> None:
    """Six processes hold 300 idle connections (the old global cap was 128): every
    one stays open and new clients are still answered, by a raw socket and by ssh-add."""
    holders = [hold_idle(agent.socket_path, 50) for _ in range(6)]
    try:
        assert len(identities(agent.socket_path)) == 1
        env = dict(os.environ, SSH_AUTH_SOCK=str(agent.socket_path))
        listed = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, timeout=10)
        assert listed.returncode == 0
        assert all(h.poll() is None for h in holders)
        # ssh-add has hung up, but the agent's loop notices that on its next turn
        deadline = time.monotonic() + 5
        while len(agent.agent._clients) != 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(agent.agent._clients) == 300
    finally:
        for h in holders:
            h.communicate("")


def test_one_peer_hoarding_connections_only_loses_its_own_idlest(
    start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    running = start_agent([device_key], max_per_peer=8)
    others = hold_idle(running.socket_path, 8)  # another process, at its own bound
    try:
        mine = [connect(running.socket_path) for _ in range(8)]
        for s in [*mine[1:], mine[0]]:  # each used once, mine[0] last: the least idle
            s.sendall(proto.encode_request_identities())
            assert read_frame(s)
        extra = [connect(running.socket_path) for _ in range(2)]  # past our bound
        for s in extra:
            s.sendall(proto.encode_request_identities())
            assert len(proto.parse_identities_answer(read_frame(s)[4:])) == 1
        assert read_frame(mine[1]) == b""  # the idlest two of ours were closed
        assert read_frame(mine[2]) == b""
        mine[0].sendall(proto.encode_request_identities())  # the recently used one stays
        assert read_frame(mine[0])
        assert len(running.agent._clients) == 16  # the other process's 8 untouched
        for s in mine + extra:
            s.close()
    finally:
        others.communicate("")


def test_a_pending_confirmation_does_not_hold_up_other_clients(
    start_agent: Callable[..., RunningAgent], device_key: AgentKey
) -> None:
    release = threading.Event()
    running = start_agent([device_key], confirm=lambda context: release.wait(10))
    with connect(running.socket_path) as waiting:
        waiting.sendall(proto.encode_sign_request(device_key.public_blob, b"needs approval"))
        for _ in range(3):
            assert len(identities(running.socket_path)) == 1  # answered meanwhile
        with connect(running.socket_path) as other:
            other.sendall(proto.encode_sign_request(device_key.public_blob, b"also waits"))
            release.set()
            proto.parse_sign_response(read_frame(other)[4:])
        sig = proto.parse_sign_response(read_frame(waiting)[4:])
        verify_signature(device_key.public_blob, sig, b"needs approval")


def test_a_client_that_never_reads_is_not_buffered_without_bound(agent: RunningAgent) -> None:
    with connect(agent.socket_path) as s:
        s.settimeout(0.5)
        request = proto.encode_request_identities()
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # far more than any bound
                sent += s.send(request * 4096)
        except TimeoutError:
            pass  # the agent stopped reading us: that is the point
        assert sent < 64 * 1024 * 1024
        assert len(identities(agent.socket_path)) == 1  # others still served


AGENT_WITH_FEW_FILES = """
import resource, sys
from keystead.adapters.ssh._keys import generate_device_key
from keystead.adapters.ssh.agent import SshAgent
key = generate_device_key("device")
agent = SshAgent(lambda: [key], cache_seconds=0)
path = agent.bind()
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
print(path, flush=True)
agent.serve_forever()
"""


def test_out_of_file_descriptors_the_biggest_peer_makes_room() -> None:
    """The agent process may open only 48 files; three processes hold 30 idle
    connections each. New clients are still answered (the biggest peer's idlest
    connection is closed to make room), instead of waiting for ever in the backlog."""
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT_WITH_FEW_FILES], stdout=subprocess.PIPE, text=True
    )
    holders = []
    try:
        assert agent.stdout is not None
        path = Path(agent.stdout.readline().strip())
        holders = [hold_idle(path, 30) for _ in range(3)]
        for _ in range(3):
            assert len(identities(path)) == 1
        env = dict(os.environ, SSH_AUTH_SOCK=str(path))
        listed = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, timeout=10)
        assert listed.returncode == 0
        assert agent.poll() is None
    finally:
        for h in holders:
            h.communicate("")
        agent.terminate()
        agent.communicate(timeout=10)


def test_many_pipelined_requests_are_all_answered(agent: RunningAgent) -> None:
    """More replies than the agent queues for one client at a time: it answers them in
    batches as the client reads, and none is lost."""
    count = 20_000
    with connect(agent.socket_path) as s:
        s.sendall(proto.encode_request_identities() * count)
        one = len(proto.encode_identities_answer([(b"x" * 51, "device@keystead-test")]))
        received = 0
        while received < count * one:
            chunk = s.recv(1 << 20)
            assert chunk, received
            received += len(chunk)
        assert received == count * one
