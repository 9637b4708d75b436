"""The unlock agent: keeps one home's keystore key in memory for a while.

Like gpg-agent or ssh-agent, it spares every command the passphrase and the
scrypt derivation (≈50 ms): ``keystead unlock --for 15m`` derives the key once
and starts a small process that hands it, over ``$KEYSTEAD_HOME/agent.sock``
(a UNIX socket, 0600, in the 0700 home), to processes of the same user only.
``keystead lock`` stops it; it also stops by itself when its time is up.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from pathlib import Path

__all__ = ["agent_socket", "fetch_key", "lock", "serve", "spawn"]

_KEY = b"K"
_LOCK = b"L"


def agent_socket(home: Path) -> Path:
    return home / "agent.sock"


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _ask(home: Path, command: bytes) -> bytes | None:
    path = agent_socket(home)
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
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
    key = _ask(home, _KEY)
    return key if key is not None and len(key) == 32 else None


def lock(home: Path) -> bool:
    """Stop the agent; True if one was running."""
    return _ask(home, _LOCK) is not None


def serve(home: Path, key: bytes, seconds: float) -> None:
    """Serve ``key`` to same-user clients until ``seconds`` pass or a lock request comes."""
    path = agent_socket(home)
    path.unlink(missing_ok=True)
    deadline = time.monotonic() + seconds
    old = os.umask(0o177)
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(16)
    me = os.getuid()
    try:
        while (left := deadline - time.monotonic()) > 0:
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            with conn:
                conn.settimeout(2)
                try:
                    if _peer_uid(conn) not in (me, 0):
                        continue
                    command = conn.recv(1)
                    if command == _KEY:
                        conn.sendall(key)
                    elif command == _LOCK:
                        conn.sendall(b"ok")
                        break
                except OSError:
                    continue
    finally:
        server.close()
        path.unlink(missing_ok=True)


def spawn(home: Path, key: bytes, seconds: float) -> None:
    """Start a detached agent process for ``home`` and wait until it answers."""
    import subprocess

    lock(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "keystead.core.unlock", str(home), str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    assert proc.stdin is not None
    proc.stdin.write(key)
    proc.stdin.close()
    for _ in range(100):
        if fetch_key(home) == key:
            return
        time.sleep(0.02)
    raise OSError("the unlock agent did not start")


if __name__ == "__main__":  # the detached agent process
    serve(Path(sys.argv[1]), sys.stdin.buffer.read(32), float(sys.argv[2]))
