"""The ssh-agent server: a UNIX socket (0600 in a 0700 folder), one event loop for all clients.

Every connection is served from one selector loop, so an idle connection
costs a socket and a few hundred bytes, not a thread; the only answer that
may wait (a signature needing the person's approval) runs on a thread of its
own while that connection alone is paused. ``ssh`` keeps its connection open
for the whole session, so connections are never timed out; the number a
single peer process may hold is bounded instead (``_agent_clients``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
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

from ._agent_clients import DEFAULT_MAX_PER_PEER, Client, ClientTable
from ._agent_core import AgentCore, ConfirmHook, KeyProvider
from ._agent_protocol import encode_failure
from ._keys import MAX_AGENT_KEYS

__all__ = ["AgentSocketError", "SshAgent"]

log = logging.getLogger(__name__)
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_READ_SIZE = 65536
_MAX_PENDING_OUT = 256 * 1024  # replies queued for a client that does not read them


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
        max_per_peer: int = DEFAULT_MAX_PER_PEER,
    ) -> None:
        self.core = AgentCore(
            provider, confirm=confirm, max_keys=max_keys, cache_seconds=cache_seconds, clock=clock
        )
        self._clock = clock
        self._clients = ClientTable(max_per_peer)
        self._sel: selectors.BaseSelector = selectors.DefaultSelector()
        self._done_requests: queue.SimpleQueue[tuple[Client, bytes]] = queue.SimpleQueue()
        self._listener: socket.socket | None = None
        self._path: Path | None = None
        self._own_dir: Path | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
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
        """Accept and serve clients until ``shutdown()``; then remove the socket."""
        listener, wake = self._listener, self._wake
        if listener is None or wake is None:
            if self._closing.is_set():
                return
            raise RuntimeError("call bind() first")
        self._serving.set()
        listener.setblocking(False)
        wake[0].setblocking(False)
        try:
            sel = self._sel
            sel.register(listener, selectors.EVENT_READ)
            sel.register(wake[0], selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, events in sel.select():
                    if key.fileobj is listener:
                        self._accept(listener)
                    elif key.fileobj is wake[0]:
                        self._finish_requests(wake[0])
                    else:
                        self._on_client(key.data, events)
        finally:
            for client in self._clients.all():
                self._close(client)
            self._cleanup()
            self._done.set()

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE):
                # Out of descriptors: the hoarding peer's idlest connection makes room.
                victim = self._clients.victim_for_new_files()
                if victim is None:
                    time.sleep(0.05)  # not ours to free; do not spin
                else:
                    self._close(victim)
            return
        pid, uid, _ = _PEERCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        if uid not in (0, os.geteuid()):
            conn.close()
            return
        conn.setblocking(False)
        client = Client(conn, pid, self._clock())
        victim = self._clients.add(client)
        if victim is not client:
            self._watch(client, selectors.EVENT_READ)
        if victim is not None:
            self._close(victim)

    def _on_client(self, client: Client, events: int) -> None:
        if client.closed:
            return
        if events & selectors.EVENT_WRITE:
            self._flush(client)
            if not client.out:
                self._answer(client)  # frames held back while the replies queued up
        if events & selectors.EVENT_READ and client.wants_read:
            try:
                data = client.sock.recv(_READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(client)
                return
            client.last_active = self._clock()
            client.decoder.feed(data)
            self._answer(client)

    def _answer(self, client: Client) -> None:
        """Answer the complete frames received, in order, until one must wait; at most
        ``_MAX_PENDING_OUT`` of replies at a time, the rest once those are sent."""
        while True:
            try:
                while (
                    not client.busy
                    and len(client.out) < _MAX_PENDING_OUT
                    and (payload := client.decoder.next_payload()) is not None
                ):
                    if self.core.may_block(payload):
                        client.busy = True
                        threading.Thread(
                            target=self._answer_slowly, args=(client, payload), daemon=True
                        ).start()
                    else:
                        client.out += self._handle(payload, client)
            except FormatError:  # a bad frame: answer the ones before it, then hang up
                self._flush(client)
                self._close(client)
                return
            capped = len(client.out) >= _MAX_PENDING_OUT
            self._flush(client)
            if not (capped and not client.out and not client.closed):
                return  # else: all sent at once, and more frames may be waiting

    def _handle(self, payload: bytes, client: Client) -> bytes:
        try:
            return self.core.handle(payload, client.session)
        except Exception:  # the boundary: one client's message must never stop the loop
            log.exception("ssh agent: answering a request failed; sending FAILURE")
            return encode_failure()

    def _answer_slowly(self, client: Client, payload: bytes) -> None:
        reply = self._handle(payload, client)
        self._done_requests.put((client, reply))
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"r")

    def _finish_requests(self, wake: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while wake.recv(4096):
                pass
        while True:
            try:
                client, reply = self._done_requests.get_nowait()
            except queue.Empty:
                return
            client.busy = False
            if client.closed:
                continue
            client.out += reply
            client.last_active = self._clock()
            self._answer(client)  # frames that arrived meanwhile

    def _flush(self, client: Client) -> None:
        if client.closed:
            return
        if client.out:
            try:
                sent = client.sock.send(client.out)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close(client)
                return
            del client.out[:sent]
        if client.out:
            self._watch(client, selectors.EVENT_WRITE)
        else:  # paused while a request waits on its worker thread
            self._watch(client, 0 if client.busy else selectors.EVENT_READ)

    def _watch(self, client: Client, events: int) -> None:
        if events == client.watching:
            return
        if not events:
            self._sel.unregister(client.sock)
        elif not client.watching:
            self._sel.register(client.sock, events, client)
        else:
            self._sel.modify(client.sock, events, client)
        client.watching = events

    def _close(self, client: Client) -> None:
        if client.closed:
            return
        client.closed = True
        self._clients.remove(client)
        if client.watching:
            self._sel.unregister(client.sock)
        client.sock.close()

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
        self._sel.close()

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
