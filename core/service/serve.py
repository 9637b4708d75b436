"""Running the service: migrations once, then one process or a supervisor of N.

The parent migrates the schema before any worker serves, so workers never race to do it
and a database that cannot be opened is one line and exit 1, whatever ``--workers`` says.
It binds the listening socket itself with ``TCP_NODELAY`` (uvicorn's own multi-worker
socket is created without a protocol number, so asyncio never set ``TCP_NODELAY`` on its
connections, and every keep-alive answer waited ~40 ms for the client's delayed ACK).

By default the workers share that one socket: whichever wakes first accepts, so connections
opened together tend to land on one worker, but a reload loses nothing (the socket and the
connections queued on it outlive every worker). With ``reuse_port`` (Linux), each worker
listens on a socket of its own on the same port (``SO_REUSEPORT``) and the kernel spreads
new connections evenly, at the price of resetting the connections queued on an old worker's
socket when a reload closes it (``ServiceConfig.reuse_port``). The parent then keeps the
port bound, not listening, for as long as it runs.

Signals to the parent: TERM/INT stop every worker (each answers its long polls at once);
HUP replaces the workers one by one, each new one serving before its old one stops (a
graceful reload). A worker that dies (even by SIGKILL) is replaced.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import uvicorn

from ..errors import StorageError
from .config import ServiceConfig
from .context import ServiceContext

__all__ = ["KeysteadServer", "bind", "run_service"]

log = logging.getLogger("keystead.service")


class KeysteadServer(uvicorn.Server):
    """uvicorn's server, whose stop signal also answers every waiting long poll at once."""

    def __init__(
        self, config: uvicorn.Config, ctx: ServiceContext, ready: Connection | None = None
    ) -> None:
        super().__init__(config)
        self.ctx, self.ready = ctx, ready

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.ctx.notifier.close()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.ready is not None:
            try:
                self.ready.send("ready")
            except OSError:
                pass  # the supervisor stopped listening: nothing to tell
            self.ready.close()


REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
"""Whether workers listen on sockets of their own (Linux balances SO_REUSEPORT groups)."""


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by connections
    try:
        sock.bind((host, port))
    except OSError as e:
        raise StorageError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _logging(config: ServiceConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("keystead.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(logging.INFO if config.access_log else logging.WARNING)
    service = logging.getLogger("keystead.service")
    service.handlers[:] = [handler]
    service.setLevel(logging.INFO)


def _serve(
    url: str,
    config: ServiceConfig,
    sock: socket.socket | tuple[str, int],
    ready: Connection | None = None,
    tls: tuple[str, str] | None = None,
) -> None:
    """One worker: the app on ``sock``, the shared socket, or a socket of its own on
    (host, port) in the port's SO_REUSEPORT group (the schema is already migrated)."""
    from . import app_for, make_context

    _logging(config)
    if isinstance(sock, tuple):
        sock = bind(*sock, reuse_port=True)
    ctx = make_context(url, config, migrate_schema=False)
    server = KeysteadServer(
        uvicorn.Config(
            app_for(ctx),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(1, int(config.shutdown_grace)),
            timeout_keep_alive=5,
            backlog=2048,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
            # not uvloop even when installed: holding 10,000 long polls opened in a burst,
            # it left about 1 in 15 connections in an overflowing accept queue for minutes
            loop="asyncio",
        ),
        ctx,
        ready,
    )
    server.run(sockets=[sock])


def run_service(
    url: str,
    host: str,
    port: int,
    workers: int,
    config: ServiceConfig,
    *,
    shown: str = "",
    tls: tuple[str, str] | None = None,
) -> None:
    """Migrate, bind, then serve in this process or supervise ``workers`` processes."""
    from sqlalchemy.exc import SQLAlchemyError

    from .db import make_engine, migrate

    if workers > 1 and url.startswith("sqlite"):
        raise StorageError(
            "--workers above 1 needs PostgreSQL (SQLite is for one process): "
            "use --database-url postgresql+psycopg://..."
        )
    try:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
    except (SQLAlchemyError, OSError, ValueError) as e:
        raise StorageError(f"cannot open the database: {e}".splitlines()[0]) from e
    # with several workers, the parent only holds the port (bound, not listening: the
    # kernel gives connections to listening sockets only); each worker listens itself
    spread = workers > 1 and config.reuse_port and REUSE_PORT
    sock = bind(host, port, reuse_port=spread, listen=not spread)
    print(
        f"keystead service on {'https' if tls else 'http'}://{host}:{sock.getsockname()[1]} "
        "(database: "
        f"{shown or 'given'}, {workers} process{'es' if workers > 1 else ''})",
        file=sys.stderr,
        flush=True,
    )
    if workers == 1:
        _serve(url, config, sock, tls=tls)
        return
    listen: socket.socket | tuple[str, int] = sock
    if spread:
        listen = (host, sock.getsockname()[1])
    try:
        _Supervisor(url, config, listen, workers, tls).run()
    finally:
        sock.close()


class _Supervisor:
    def __init__(
        self,
        url: str,
        config: ServiceConfig,
        sock: socket.socket | tuple[str, int],
        workers: int,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.url, self.config, self.sock, self.n, self.tls = url, config, sock, workers, tls
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = []
        self.stopping = False
        self.reload = False
        self.crashes: list[float] = []
        self.pipes: dict[int | None, Connection] = {}

    def spawn(self, wait_ready: bool = False) -> Any:
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=_serve,
            args=(self.url, self.config, self.sock, child, self.tls),
            name="keystead-worker",
        )
        proc.start()
        child.close()
        self.pipes[proc.pid] = parent  # kept open: the worker writes into it when it serves
        if wait_ready:
            ok = parent.poll(60) and parent.recv() == "ready"
            if not ok:
                proc.terminate()
                proc.join(5)
                raise StorageError("a new worker did not start")
        return proc

    def _signal(self, sig: int, _frame: FrameType | None) -> None:
        if sig == signal.SIGHUP:
            self.reload = True
        else:
            self.stopping = True

    def run(self) -> None:
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        signal.set_wakeup_fd(wfd.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._signal)
        self.procs = [self.spawn() for _ in range(self.n)]
        try:
            while not self.stopping:
                multiprocessing.connection.wait([p.sentinel for p in self.procs] + [rfd])
                try:
                    rfd.recv(512)
                except BlockingIOError:
                    pass
                if self.stopping:
                    break
                if self.reload:
                    self.reload = False
                    self._reload()
                self._replace_dead()
        finally:
            for p in self.procs:
                if p.is_alive():
                    p.terminate()
            deadline = time.monotonic() + 10
            for p in self.procs:
                p.join(max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join()

    def _replace_dead(self) -> None:
        for i, p in enumerate(self.procs):
            if p.is_alive() or self.stopping:
                continue
            now = time.monotonic()
            self.crashes = [t for t in self.crashes if now - t < 30] + [now]
            if len(self.crashes) > 5 * self.n:
                self.stopping = True
                raise StorageError("workers keep dying; see the log above")
            log.warning("worker %s exited (%s); starting another", p.pid, p.exitcode)
            self.pipes.pop(p.pid, None)
            self.procs[i] = self.spawn()

    def _reload(self) -> None:
        retired: list[Any] = []
        for i, old in enumerate(list(self.procs)):
            self.procs[i] = self.spawn(wait_ready=True)
            old.terminate()  # answers its long polls at once; its clients come back to another
            retired.append(old)
        for old in retired:
            old.join(10)
            self.pipes.pop(old.pid, None)
        log.warning("reloaded %d workers", len(self.procs))
