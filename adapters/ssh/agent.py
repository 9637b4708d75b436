"""The ssh-agent server: a UNIX socket (0600 in a 0700 folder), one thread per client.

One thread per connection keeps a slow or hostile client (a stalled partial
frame, a pending confirmation) from holding up the others; ``ssh`` keeps its
connection open for the whole session, so connections are never timed out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from keystead.core.errors import FormatError, KeysteadError

from ._agent_core import AgentCore, ConfirmHook, KeyProvider, Session
from ._agent_protocol import FrameDecoder
from ._keys import MAX_AGENT_KEYS

__all__ = ["AgentSocketError", "SshAgent"]

log = logging.getLogger(__name__)
_PEERCRED = struct.Struct("3i")  # pid, uid, gid


class AgentSocketError(KeysteadError):
    """The agent socket cannot be created safely where asked."""


class SshAgent:
    """Serve keys from ``provider`` over the ssh-agent protocol.

    ``bind()`` creates the socket and returns its path (for SSH_AUTH_SOCK);
    ``serve_forever()`` blocks until ``shutdown()``; ``start()`` does both on
    a background thread. Only clients running as our own uid (or root) are
    served, as OpenSSH's agent does.
    """

    def __init__(
        self,
        provider: KeyProvider,
        *,
        confirm: ConfirmHook | None = None,
        max_keys: int = MAX_AGENT_KEYS,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 128,
    ) -> None:
        self.core = AgentCore(
            provider, confirm=confirm, max_keys=max_keys, cache_seconds=cache_seconds, clock=clock
        )
        self._max_connections = max_connections
        self._listener: socket.socket | None = None
        self._path: Path | None = None
        self._own_dir: Path | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._done = threading.Event()
        self._serving = threading.Event()

    @property
    def socket_path(self) -> Path:
        """Where the agent listens; set by ``bind()``."""
        if self._path is None:
            raise RuntimeError("the agent is not bound yet")
        return self._path

    def bind(self, path: str | Path | None = None) -> Path:
        """Create the listening socket; a new private folder when ``path`` is None."""
        if self._listener is not None:
            raise RuntimeError("the agent is already bound")
        if path is None:
            runtime = os.environ.get("XDG_RUNTIME_DIR")
            base = runtime if runtime and os.path.isdir(runtime) else None
            self._own_dir = Path(tempfile.mkdtemp(prefix="keystead-ssh-", dir=base))
            target = self._own_dir / "agent.sock"
        else:
            target = Path(path).absolute()
            _prepare_folder(target.parent)
            _remove_stale_socket(target)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(target))
            os.chmod(target, 0o600)
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise AgentSocketError(f"cannot listen on {target}: {e.strerror or e}") from e
        self._listener, self._path = sock, target
        self._wake = socket.socketpair()
        return target

    def start(self, path: str | Path | None = None) -> Path:
        """Bind (unless bound) and serve on a daemon thread; returns the socket path."""
        if self._listener is None:
            self.bind(path)
        self._serving.set()
        threading.Thread(target=self.serve_forever, name="ssh-agent", daemon=True).start()
        return self.socket_path

    def serve_forever(self) -> None:
        """Accept clients until ``shutdown()``; then remove the socket."""
        listener, wake = self._listener, self._wake
        if listener is None or wake is None:
            if self._closing.is_set():
                return
            raise RuntimeError("call bind() first")
        self._serving.set()
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(listener, selectors.EVENT_READ)
                sel.register(wake[0], selectors.EVENT_READ)
                while not self._closing.is_set():
                    for sk, _ in sel.select():
                        if sk.fileobj is listener:
                            self._accept(listener)
        finally:
            self._cleanup()
            self._done.set()

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        uid = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )[1]
        with self._lock:
            allowed = uid in (0, os.geteuid()) and len(self._clients) < self._max_connections
            if allowed:
                self._clients.add(conn)
        if not allowed:
            conn.close()
            return
        threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()

    def _serve_client(self, conn: socket.socket) -> None:
        session = Session()
        decoder = FrameDecoder()
        handle = self.core.handle
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                decoder.feed(data)
                while (payload := decoder.next_payload()) is not None:
                    conn.sendall(handle(payload, session))
        except (OSError, FormatError):
            return  # a broken stream cannot be resynchronised: drop this client only
        finally:
            with self._lock:
                self._clients.discard(conn)
            conn.close()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, disconnect clients, remove the socket (and our folder).

        Waits up to ``timeout`` for ``serve_forever`` to finish; from a signal
        handler running on the serving thread itself, pass ``timeout=0``.
        """
        self._closing.set()
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"x")
        if self._serving.is_set():
            self._done.wait(timeout)
        else:
            self._cleanup()
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _cleanup(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        if self._wake is not None:
            for end in self._wake:
                end.close()

    def __enter__(self) -> SshAgent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _prepare_folder(folder: Path) -> None:
    """Create ``folder`` 0700, or require an existing one to be ours and private."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise AgentSocketError(f"{folder} is not a folder")
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise AgentSocketError(f"{folder} must be a 0700 folder owned by this user")


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a dead agent; refuse a live one or any other file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AgentSocketError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise AgentSocketError(f"an agent is already listening on {path}")
