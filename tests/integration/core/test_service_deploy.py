"""Several real service processes on one PostgreSQL, behind a real nginx (deploy/nginx.conf).

A device waiting on one process is woken by a post to another (LISTEN/NOTIFY); a stop
answers every waiter at once; a process killed with SIGKILL mid-write loses nothing it
acknowledged; database connections cut under load are 503 JSON, then service resumes; a
reload (SIGHUP to ``--workers 2``) replaces the workers under load and fails no request;
with ``reuse_port`` connections spread over the workers; a worker killed with SIGKILL is
replaced by the supervisor while reads go on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from keystead.core.account import create_account
from keystead.core.client import ServiceClient, Signer
from keystead.core.device import Device
from keystead.core.errors import Unavailable
from keystead.core.home import Home
from keystead.core.testing import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[3]
PG = os.environ.get("KEYSTEAD_TEST_DATABASE_URL", "")
needs_pg = pytest.mark.skipif(
    not PG.startswith("postgresql"), reason="KEYSTEAD_TEST_DATABASE_URL is not a PostgreSQL URL"
)


def _pg() -> str:
    """The PostgreSQL URL now: under pytest-xdist, this worker's own database (conftest)."""
    return os.environ["KEYSTEAD_TEST_DATABASE_URL"]


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _render(listen: int, backends: list[int]) -> str:
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import render
    finally:
        sys.path.pop(0)
    return str(render.render(listen, backends))


@pytest.fixture
def two_behind_nginx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, list[ServiceProcess]]]:
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (scripts/test installs it: apt-get install nginx)")
    monkeypatch.setenv("KEYSTEAD_TRUST_FORWARDED_FOR", "true")
    procs = [ServiceProcess(_pg(), tmp_path / f"p{i}") for i in range(2)]
    for p in procs:
        p.workdir.mkdir()
        p.start()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_render(port, [p.port for p in procs]))
    with open(prefix / "error.log", "wb") as errlog:
        # Started as root, nginx's workers run as "nobody", who cannot enter pytest's private
        # tmp dir: every request body past the in-memory buffer (an account's first bundle)
        # would be a 500 from nginx. The workers stay root here; deployments use their prefix.
        user = ["-g", "user root;"] if os.geteuid() == 0 else []
        nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), *user], stderr=errlog)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/v1/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url, procs
    finally:
        nginx.terminate()
        nginx.wait(10)
        for p in procs:
            p.stop()


def _device(tmp: Path, url: str) -> Device:
    # our own transport, closed after the test (create_account leaves its first client open)
    transport = httpx.HTTPTransport()
    _transports.append(transport)
    dev, _ = create_account(
        Home(tmp / "home"),
        url,
        f"d-{uuid.uuid4().hex[:8]}",
        "laptop",
        "pass phrase for tests",
        collections=("notes", "messages"),
        transport=transport,
    )
    _devices.append(dev)
    return dev


_clients: list[ServiceClient] = []
_devices: list[Device] = []
_transports: list[httpx.HTTPTransport] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()
    while _devices:
        _devices.pop().close()
    while _transports:
        _transports.pop().close()


def _message(dev: Device) -> dict[str, str]:
    """A direct message from ``dev`` to its own account, as the messaging adapter's route
    takes it (sealed to the current epoch of the account's messages key): since protocol 2
    no device posts to a spool channel through the generic route."""
    from keystead.adapters.messaging._envelope import make_envelope, new_message_id
    from keystead.core import b64e, random_bytes, seal_to_key

    address = f"{dev.account}@127.0.0.1"
    wire = make_envelope(
        dev.keys.signing,
        message_id=new_message_id(),
        sender=address,
        device=dev.device_id,
        to=address,
        time=int(time.time()),
        group=None,
        sealed_key=seal_to_key(dev.chain(), "messages", random_bytes(32)),
        body=random_bytes(16),
    )
    return {"body": b64e(wire)}


def _post(dev: Device, url: str) -> tuple[int, str]:
    """Post one message to ``dev``'s spool through the service at ``url``: its id and body."""
    msg = _message(dev)
    r = _client(dev, url).post(f"/messaging/direct/{dev.account}", msg)
    return int(r["id"]), msg["body"]


def _client(dev: Device, url: str) -> ServiceClient:
    client = ServiceClient(url, signer=Signer(dev.account, dev.device_id, dev.keys.signing))
    _clients.append(client)
    return client


def _wait_in_thread(
    client: ServiceClient, account: str, wait: int, after: int = 0
) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        start = time.monotonic()
        out["answer"] = client.get(
            f"/accounts/{account}/spool/messages",
            params={"after": after, "wait": wait},
            timeout=wait + 10,
        )
        out["took"] = time.monotonic() - start

    t = threading.Thread(target=run)
    t.start()
    return t, out


def until(check: Callable[[], bool], seconds: float, failure: str) -> None:
    """Poll ``check`` (every 0.1 s) until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.1)


def _waiters(proc: ServiceProcess) -> float:
    text = httpx.get(proc.url + "/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("keystead_waiters "))
    return float(line.split()[1])


@needs_pg
def test_a_waiter_on_one_process_is_woken_by_a_post_to_the_other(
    two_behind_nginx: tuple[str, list[ServiceProcess]], tmp_path: Path
) -> None:
    url, (a, b) = two_behind_nginx
    dev = _device(tmp_path, url)  # created through nginx
    t, out = _wait_in_thread(_client(dev, a.url), dev.account, 30)
    for _ in range(100):
        if _waiters(a) == 1:
            break
        time.sleep(0.05)
    assert _waiters(a) == 1 and _waiters(b) == 0
    posted = time.monotonic()
    _, body = _post(dev, b.url)
    t.join(20)
    woke = time.monotonic() - posted
    answer = out["answer"]
    assert isinstance(answer, dict) and [m["body"] for m in answer["messages"]] == [body]
    assert woke < 2, woke  # LISTEN/NOTIFY, not the 30 s timeout
    assert _waiters(a) == 0

    # through nginx: whichever process holds the wait, a post to either wakes it
    for target in (a, b):
        cursor = answer["messages"][-1]["id"]
        t, out = _wait_in_thread(_client(dev, url), dev.account, 30, cursor)
        time.sleep(0.5)
        _post(dev, target.url)
        t.join(20)
        answer = out["answer"]
        assert isinstance(answer, dict) and any(m["id"] > cursor for m in answer["messages"])
        assert float(str(out["took"])) < 5


@needs_pg
def test_stop_answers_every_waiter_and_a_killed_process_loses_no_acknowledged_write(
    two_behind_nginx: tuple[str, list[ServiceProcess]], tmp_path: Path
) -> None:
    url, (a, b) = two_behind_nginx
    dev = _device(tmp_path, url)
    threads = [_wait_in_thread(_client(dev, a.url), dev.account, 60) for _ in range(30)]
    for _ in range(100):
        if _waiters(a) == 30:
            break
        time.sleep(0.05)
    assert a.process is not None
    start = time.monotonic()
    a.process.send_signal(signal.SIGTERM)
    a.process.wait(10)
    for t, _ in threads:
        t.join(10)
    assert time.monotonic() - start < 2
    assert all(isinstance(out.get("answer"), dict) for _, out in threads)
    a.start()  # rejoins without anything else

    # writes through nginx while process b is SIGKILLed: each acknowledged one is stored
    acked: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            try:
                acked.append(_post(dev, url)[0])
            except Exception as e:  # noqa: BLE001 - a refused or cut write is allowed
                errors.append(type(e).__name__)

    ws = [threading.Thread(target=writer) for _ in range(4)]
    for w in ws:
        w.start()
    time.sleep(1.5)
    assert b.process is not None
    b.process.kill()
    b.process.wait(10)
    time.sleep(1.5)
    stop.set()
    for w in ws:
        w.join(30)
    stored = {
        m["id"]
        for m in _client(dev, a.url).get(
            f"/accounts/{dev.account}/spool/messages", params={"after": 0, "limit": 20000}
        )["messages"]
    }
    assert len(acked) > 10
    assert set(acked) <= stored
    b.start()
    assert httpx.get(b.url + "/v1/ready", timeout=5).status_code == 200


@needs_pg
def test_database_connections_cut_under_load_are_503_json_then_recover(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    with ServiceProcess(_pg(), tmp_path) as svc:
        dev = _device(tmp_path, svc.url)
        client = _client(dev, svc.url)
        statuses: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                try:
                    client.get(f"/accounts/{dev.account}/collections/notes/items")
                    statuses.append("ok")
                except Unavailable:
                    statuses.append("503")

        ts = [threading.Thread(target=reader) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(1)
        admin = create_engine(_pg())
        with admin.begin() as conn:  # every connection of the service, the listener's too
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        admin.dispose()
        time.sleep(2)
        stop.set()
        for t in ts:
            t.join(30)
        assert statuses[-1] == "ok"  # recovered without a restart
        assert httpx.get(svc.url + "/v1/ready", timeout=5).status_code == 200
        log = (tmp_path / "service.log").read_text()
        assert "Traceback" not in log


def test_bad_database_url_and_sqlite_with_workers_are_one_line_and_exit_1(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "keystead.core.cli", "serve", "--port", str(free_port())]
    for args, expect in [
        (
            ["--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/x", "--workers", "2"],
            "cannot open the database",
        ),
        (
            ["--database-url", f"sqlite:///{tmp_path / 's.sqlite'}", "--workers", "2"],
            "needs PostgreSQL",
        ),
        (["--database-url", "not a url"], "not a database URL"),
    ]:
        proc = subprocess.run(cli + args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], proc.stderr


def _ss(state: str, port: int) -> list[str]:
    out = subprocess.run(
        ["ss", "-tnpH", "state", state, f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def _pids(line: str) -> set[str]:
    return {part.split(",", 1)[0] for part in line.split("pid=")[1:]}


def _listeners(port: int) -> set[str]:
    """The processes holding a listening socket on ``port`` (the supervisor included when
    the socket is shared)."""
    return {pid for line in _ss("listening", port) for pid in _pids(line)}


@needs_pg
def test_with_reuse_port_connections_spread_over_the_workers(tmp_path: Path) -> None:
    import socket

    svc = ServiceProcess(_pg(), tmp_path, workers=2, env={"KEYSTEAD_REUSE_PORT": "true"})
    with svc:
        # both workers listening, each on a socket of its own
        until(lambda: len(_ss("listening", svc.port)) == 2, 10, "no two listening sockets")
        conns = [socket.create_connection(("127.0.0.1", svc.port)) for _ in range(32)]
        try:
            for c in conns:
                c.sendall(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
            for c in conns:
                assert c.recv(4096).startswith(b"HTTP/1.1 200")
            by: dict[str, int] = {}
            for line in _ss("established", svc.port):
                for pid in _pids(line):
                    by[pid] = by.get(pid, 0) + 1
        finally:
            for c in conns:
                c.close()
        # evenly hashed, 32 connections put fewer than 4 on one of two workers once in 10^5
        assert len(by) == 2 and min(by.values()) >= 4, by


@contextmanager
def reading(dev: Device, url: str, threads: int = 4) -> Iterator[list[str]]:
    """``threads`` clients reading ``dev``'s notes in a loop for as long as the block runs;
    yields what each read gave ("ok", or the error and its cause)."""
    outcomes: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        client = _client(dev, url)
        while not stop.is_set():
            try:
                client.get(f"/accounts/{dev.account}/collections/notes/items")
                outcomes.append("ok")
            except Exception as e:
                outcomes.append(f"{type(e).__name__}: {e} ({e.__cause__!r})")

    ts = [threading.Thread(target=reader) for _ in range(threads)]
    for t in ts:
        t.start()
    try:
        yield outcomes
    finally:
        stop.set()
        for t in ts:
            t.join(30)


@needs_pg
def test_a_reload_replaces_the_workers_one_by_one_and_loses_no_request(tmp_path: Path) -> None:
    with ServiceProcess(_pg(), tmp_path, workers=2) as svc:
        assert svc.process is not None
        before = _listeners(svc.port)
        dev = _device(tmp_path, svc.url)
        with reading(dev, svc.url) as outcomes:
            time.sleep(1)
            svc.process.send_signal(signal.SIGHUP)
            log = tmp_path / "service.log"
            until(lambda: "reloaded 2 workers" in log.read_text(), 30, "no reload in 30 s")
            time.sleep(1)
        assert len(outcomes) > 100
        assert [o for o in outcomes if o != "ok"] == []
        after = _listeners(svc.port)
        assert str(svc.process.pid) in before & after  # the supervisor stayed
        assert len(before - after) == len(after - before) == 2  # both workers are new


@needs_pg
def test_a_worker_killed_with_sigkill_is_replaced_and_reads_go_on(tmp_path: Path) -> None:
    with ServiceProcess(_pg(), tmp_path, workers=2) as svc:
        assert svc.process is not None
        supervisor = str(svc.process.pid)
        until(lambda: len(_listeners(svc.port)) == 3, 30, "two workers did not start")
        workers = _listeners(svc.port) - {supervisor}
        dev = _device(tmp_path, svc.url)
        with reading(dev, svc.url) as outcomes:
            time.sleep(1)
            victim = sorted(workers)[0]
            os.kill(int(victim), signal.SIGKILL)
            until(  # the supervisor starts another by itself
                lambda: len(_listeners(svc.port) - {supervisor, victim}) == 2,
                30,
                "the killed worker was not replaced",
            )
            time.sleep(1)
        assert len(outcomes) > 100
        assert [o for o in outcomes if o != "ok"] == []  # a read cut by the kill is resent
        assert "exited (-9); starting another" in (tmp_path / "service.log").read_text()
