"""The unlock agent: keeps one home's keystore key in memory for a while.

Like gpg-agent or ssh-agent, it spares every command the passphrase and the
scrypt derivation (≈50 ms): ``keystead unlock --for 15m`` derives the key once
and starts a small process that hands it, over ``$KEYSTEAD_HOME/agent.sock``
(a UNIX socket, 0600, in the 0700 home), to processes of the same user only.
``keystead lock`` stops it; it also stops by itself when its time is up.

It also runs *quick commands* in-process: the commands adapters list in
``Adapter.quick_commands`` (``keystead passwords get``...), which read no stdin
and name no files. The ``keystead`` launcher sends such a command line here
and prints what comes back, so a lookup costs a bare interpreter start and one
round trip instead of importing Click, the adapters and the crypto libraries
and unsealing the keystore every time. Anyone who may ask the agent for the
key may as well ask it to run a command: the trust boundary is the same.

Wire format (one request per connection): a command byte, then

* ``K`` → the 32-byte key;
* ``L`` → ``ok``, and the agent stops;
* ``R`` + 4-byte length + 4-byte argument count + the arguments, then
  ``NAME=value`` environment entries (each NUL-terminated: neither can hold a NUL) →
  ``N`` at once (not a quick command: run it yourself), or ``A`` at once (accepted:
  the agent runs it, so the caller must not), then, when the command is done, its
  exit code and chunk count (``>iI``) and each chunk of output as file descriptor
  (1 or 2) and length (``>BI``) + bytes, in the order the command wrote them.

The client side imports nothing beyond ``os``, ``struct`` and ``_socket``: the
launcher's start-up time is most of a quick command's.
"""

from __future__ import annotations

import _socket  # socket.py's enums and selectors cost ~10 ms of a 30 ms command: see _connect
import os
import struct
import sys
import time

TYPE_CHECKING = False  # not typing's: importing typing would double the launcher's imports
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence
    from typing import Protocol

    class Runner(Protocol):
        def is_quick(self, argv: Sequence[str]) -> bool: ...
        def __call__(self, argv: list[str], env: dict[str, str]) -> QuickResult: ...


QuickResult = tuple[int, list[tuple[int, bytes]]]
"""A command's exit status, and its output as (1 for stdout or 2 for stderr, bytes) chunks in
the order it wrote them: a terminal shows them as if the command had run there."""

__all__ = [
    "AgentLost",
    "QuickResult",
    "agent_socket",
    "fetch_key",
    "lock",
    "run_quick",
    "serve",
    "spawn",
]

_KEY = b"K"
_LOCK = b"L"
_RUN = b"R"
_ACCEPTED = b"A"
_NOT_SERVED = b"N"
_RESULT = struct.Struct(">iI")
_CHUNK = struct.Struct(">BI")
_MAX_REQUEST = 1 << 16

# In the agent process: the home it serves (resolved) and its key, so commands
# it runs in-process get the key without a round trip to themselves.
_resident: tuple[str, bytes] | None = None


class AgentLost(ConnectionError):
    """The agent took a command and went away before answering: whether it ran is unknown,
    so it is not run again."""


def agent_socket(home: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(home), "agent.sock")


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _recv_exactly(conn: socket.socket | _socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("the unlock agent closed the connection")
        data += chunk
    return bytes(data)


def _connect(home: str | os.PathLike[str]) -> _socket.socket | None:
    """A connection to ``home``'s agent, or None. The plain ``_socket`` type (which the
    ``socket`` module subclasses) does all a client needs, and imports nothing."""
    path = agent_socket(home)
    if not os.path.exists(path):
        return None
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(path)
    except OSError:
        s.close()
        return None
    return s


def _ask(home: str | os.PathLike[str], command: bytes) -> bytes | None:
    s = _connect(home)
    if s is None:
        return None
    try:
        s.sendall(command)
        data = b""
        while len(data) < 32:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        return data
    except OSError:
        return None
    finally:
        s.close()


def fetch_key(home: str | os.PathLike[str]) -> bytes | None:
    """The keystore key from a running agent, or None."""
    if _resident is not None and os.path.realpath(home) == _resident[0]:
        return _resident[1]
    key = _ask(home, _KEY)
    return key if key is not None and len(key) == 32 else None


def lock(home: str | os.PathLike[str]) -> bool:
    """Stop the agent; True if one was running."""
    return _ask(home, _LOCK) is not None


def _encode_request(argv: Sequence[str], env: dict[str, str]) -> bytes:
    fields = [*argv, *(f"{k}={v}" for k, v in env.items())]
    return struct.pack(">I", len(argv)) + b"".join(os.fsencode(f) + b"\0" for f in fields)


def _decode_request(body: bytes) -> tuple[list[str], dict[str, str]]:
    if len(body) < 4 or (len(body) > 4 and not body.endswith(b"\0")):
        raise ValueError("a request is a count, then NUL-terminated fields")
    (n,) = struct.unpack(">I", body[:4])
    fields = [os.fsdecode(f) for f in body[4:-1].split(b"\0")] if len(body) > 4 else []
    if n > len(fields) or not all("=" in e for e in fields[n:]):
        raise ValueError("a request's environment entries are NAME=value")
    return fields[:n], dict(e.split("=", 1) for e in fields[n:])


def run_quick(home: str | os.PathLike[str], argv: Sequence[str]) -> QuickResult | None:
    """Have ``home``'s agent run ``keystead ARGV``; None when no agent runs it (not
    running, or not a quick command), and the caller runs it itself. Raises
    ``AgentLost`` when the agent took the command and did not answer."""
    s = _connect(home)
    if s is None:
        return None
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("KEYSTEAD_") and k not in ("KEYSTEAD_HOME", "KEYSTEAD_PASSPHRASE")
    }
    body = _encode_request(argv, env)
    try:
        s.sendall(_RUN + struct.pack(">I", len(body)) + body)
        accepted = _recv_exactly(s, 1) == _ACCEPTED
    except OSError:
        accepted = False
    if not accepted:
        s.close()
        return None
    try:
        s.settimeout(None)  # the command may sync over the network: as long as it takes
        code, n = _RESULT.unpack(_recv_exactly(s, _RESULT.size))
        chunks = []
        for _ in range(n):
            fd, size = _CHUNK.unpack(_recv_exactly(s, _CHUNK.size))
            chunks.append((fd, _recv_exactly(s, size)))
        return code, chunks
    except OSError:
        raise AgentLost("the unlock agent stopped before the command's answer came") from None
    finally:
        s.close()


class _Agent:
    """The agent process's state: the key, the deadline, and one command at a time."""

    def __init__(self, home: str, key: bytes, seconds: float, runner: Runner) -> None:
        import threading

        self.home, self.key = home, key
        self.deadline = time.monotonic() + seconds
        self.stopping = threading.Event()
        self.running = threading.Lock()  # commands share sys.stdout and os.environ
        self.runner = runner
        self.me = os.getuid()
        self.socket_id: tuple[int, int] | None = None

    def remove_socket(self) -> None:
        """Unlink our socket file, unless a newer agent has already put its own there."""
        path = agent_socket(self.home)
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == self.socket_id:
                os.unlink(path)
        except FileNotFoundError:
            pass

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                if _peer_uid(conn) not in (self.me, 0):
                    return
                command = conn.recv(1)
                if command == _KEY:
                    conn.sendall(self.key)
                elif command == _LOCK:
                    self.stopping.set()
                    self.remove_socket()  # locked from now on, not after the next tick
                    conn.sendall(b"ok")
                elif command == _RUN:
                    self._run(conn)
            except OSError:  # ConnectionError included: the client went away
                return
            except Exception:  # a broken runner must not stop the agent
                return

    def _run(self, conn: socket.socket) -> None:
        (n,) = struct.unpack(">I", _recv_exactly(conn, 4))
        if n > _MAX_REQUEST:
            conn.sendall(_NOT_SERVED)
            return
        try:
            argv, env = _decode_request(_recv_exactly(conn, n))
        except ValueError:
            conn.sendall(_NOT_SERVED)
            return
        if not self.runner.is_quick(argv):
            conn.sendall(_NOT_SERVED)
            return
        conn.sendall(_ACCEPTED)
        with self.running:
            code, chunks = self.runner(argv, env)
        conn.settimeout(30)
        conn.sendall(
            b"".join(
                [
                    _RESULT.pack(code, len(chunks)),
                    *(_CHUNK.pack(fd, len(b)) + b for fd, b in chunks),
                ]
            )
        )


class _NoCommands:
    """The runner of an agent that only holds the key."""

    def is_quick(self, argv: Sequence[str]) -> bool:
        return False

    def __call__(self, argv: list[str], env: dict[str, str]) -> QuickResult:
        raise AssertionError("not a quick command")


def serve(
    home: str | os.PathLike[str], key: bytes, seconds: float, runner: Runner | None = None
) -> None:
    """Serve ``key`` (and quick commands, through ``runner``) to same-user clients until
    ``seconds`` pass or a lock request comes."""
    import socket
    import threading

    global _resident
    resolved = os.path.realpath(home)
    _resident = (resolved, key)
    path = agent_socket(resolved)
    agent = _Agent(resolved, key, seconds, runner or _NoCommands())
    # Bound and listening under a temporary name, then renamed into place (replacing an
    # older agent's): a client never finds a socket that refuses connections.
    ready = os.path.join(resolved, f".a{os.urandom(3).hex()}")  # not longer than the final name
    old = os.umask(0o177)
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(ready)
    finally:
        os.umask(old)
    server.listen(16)
    st = os.stat(ready)
    agent.socket_id = (st.st_dev, st.st_ino)
    os.replace(ready, path)
    handlers: list[threading.Thread] = []
    try:
        while not agent.stopping.is_set() and (left := agent.deadline - time.monotonic()) > 0:
            server.settimeout(min(left, 0.5))
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            handlers = [t for t in handlers if t.is_alive()]
            handlers.append(threading.Thread(target=agent.handle, args=(conn,), daemon=True))
            handlers[-1].start()
    finally:
        server.close()
        agent.remove_socket()
        for t in handlers:  # a command that was running when time ran out still answers
            t.join(timeout=60)


def spawn(home: str | os.PathLike[str], key: bytes, seconds: float) -> None:
    """Start a detached agent process for ``home`` and wait until it answers."""
    import subprocess

    from .errors import StorageError

    lock(home)
    env = {k: v for k, v in os.environ.items() if k != "KEYSTEAD_PASSPHRASE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keystead.core.cli.agent", os.path.realpath(home), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(key)
    proc.stdin.close()
    for _ in range(750):  # up to 15 s: it imports the CLI and the adapters first
        if fetch_key(home) == key:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise StorageError(
        f"the unlock agent did not start (is {home} writable, and its path "
        "short enough for a UNIX socket?)"
    )
