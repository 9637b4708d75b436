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
* ``R`` + 4-byte length + JSON ``{"argv": [...], "env": {...}}`` → ``N`` (not a
  quick command: run it yourself) or ``D`` + exit code, stdout and stderr
  lengths (``>iII``) + stdout + stderr.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["QuickResult", "agent_socket", "fetch_key", "lock", "run_quick", "serve", "spawn"]

_KEY = b"K"
_LOCK = b"L"
_RUN = b"R"
_DONE = b"D"
_NOT_SERVED = b"N"
_RESULT = struct.Struct(">iII")
_MAX_REQUEST = 1 << 16

QuickResult = tuple[int, bytes, bytes]
"""Exit status, stdout and stderr of a command the agent ran."""

# In the agent process: the home it serves and its key, so commands it runs
# in-process get the key without a round trip to themselves.
_resident: tuple[Path, bytes] | None = None


def agent_socket(home: Path) -> Path:
    return home / "agent.sock"


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("the unlock agent closed the connection")
        data += chunk
    return bytes(data)


def _connect(home: Path) -> socket.socket | None:
    path = agent_socket(home)
    if not path.exists():
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    return s


def _ask(home: Path, command: bytes) -> bytes | None:
    s = _connect(home)
    if s is None:
        return None
    try:
        with s:
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


def fetch_key(home: Path) -> bytes | None:
    """The keystore key from a running agent, or None."""
    if _resident is not None and home.resolve() == _resident[0]:
        return _resident[1]
    key = _ask(home, _KEY)
    return key if key is not None and len(key) == 32 else None


def lock(home: Path) -> bool:
    """Stop the agent; True if one was running."""
    return _ask(home, _LOCK) is not None


def run_quick(home: Path, argv: Sequence[str]) -> QuickResult | None:
    """Have ``home``'s agent run ``keystead ARGV``; None when no agent runs it (not
    running, or not a quick command), and the caller runs it itself."""
    s = _connect(home)
    if s is None:
        return None
    env = {k: v for k, v in os.environ.items()
           if k.startswith("KEYSTEAD_") and k not in ("KEYSTEAD_HOME", "KEYSTEAD_PASSPHRASE")}
    body = json.dumps({"argv": list(argv), "env": env}).encode()
    try:
        with s:
            s.sendall(_RUN + struct.pack(">I", len(body)) + body)
            if _recv_exactly(s, 1) != _DONE:
                return None
            s.settimeout(None)  # the command may sync over the network: as long as it takes
            code, n_out, n_err = _RESULT.unpack(_recv_exactly(s, _RESULT.size))
            return code, _recv_exactly(s, n_out), _recv_exactly(s, n_err)
    except (OSError, ConnectionError, struct.error):
        return None


class _Agent:
    """The agent process's state: the key, the deadline, and one command at a time."""

    def __init__(self, home: Path, key: bytes, seconds: float,
                 runner: Callable[[list[str], dict[str, str]], QuickResult | None]) -> None:
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
            st = path.stat()
            if (st.st_dev, st.st_ino) == self.socket_id:
                path.unlink()
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
            except (OSError, ConnectionError):
                return

    def _run(self, conn: socket.socket) -> None:
        (n,) = struct.unpack(">I", _recv_exactly(conn, 4))
        if n > _MAX_REQUEST:
            conn.sendall(_NOT_SERVED)
            return
        try:
            request = json.loads(_recv_exactly(conn, n))
            argv = [str(a) for a in request["argv"]]
            env = {str(k): str(v) for k, v in request["env"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            conn.sendall(_NOT_SERVED)
            return
        with self.running:
            result = self.runner(argv, env)
        if result is None:
            conn.sendall(_NOT_SERVED)
            return
        code, out, err = result
        conn.settimeout(30)
        conn.sendall(_DONE + _RESULT.pack(code, len(out), len(err)) + out + err)


def serve(home: Path, key: bytes, seconds: float,
          runner: Callable[[list[str], dict[str, str]], QuickResult | None] | None = None
          ) -> None:
    """Serve ``key`` (and quick commands, through ``runner``) to same-user clients until
    ``seconds`` pass or a lock request comes."""
    global _resident
    home = home.resolve()
    _resident = (home, key)
    path = agent_socket(home)
    path.unlink(missing_ok=True)
    agent = _Agent(home, key, seconds, runner or (lambda argv, env: None))
    old = os.umask(0o177)
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
    finally:
        os.umask(old)
    st = path.stat()
    agent.socket_id = (st.st_dev, st.st_ino)
    server.listen(16)
    try:
        while not agent.stopping.is_set() and (left := agent.deadline - time.monotonic()) > 0:
            server.settimeout(min(left, 0.5))
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=agent.handle, args=(conn,), daemon=True).start()
    finally:
        server.close()
        agent.remove_socket()


def spawn(home: Path, key: bytes, seconds: float) -> None:
    """Start a detached agent process for ``home`` and wait until it answers."""
    import subprocess

    lock(home)
    env = {k: v for k, v in os.environ.items() if k != "KEYSTEAD_PASSPHRASE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keystead.core.cli.agent", str(home.resolve()), str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env=env)
    assert proc.stdin is not None
    proc.stdin.write(key)
    proc.stdin.close()
    for _ in range(250):
        if fetch_key(home) == key:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise OSError("the unlock agent did not start")
