"""PostgreSQL really stopped and started again under load (issue 12, "Bad input and faults").

The service runs on a private cluster of the machine's own PostgreSQL (initdb in a temporary
folder, its own port), so the test can stop the server itself, not only cut connections.
Devices read and post messages throughout, and one long poll stays open across the outage.
While the database is down, every request is a 503 JSON answer, quickly, never a traceback
or a hang, and readiness says so; the long poll is answered; once the database is back,
reads and posts succeed again, readiness returns, the notification listener has reconnected
by itself (a waiter is woken by a post), and every message answered as stored is there, with
no operator action and no restart of the service.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from keystead.core.errors import Unavailable
from keystead.core.testing import ServiceProcess, free_port
from test_service_deploy import (
    _client,
    _close_clients,  # noqa: F401  (autouse: closes _client's)
    _device,
    _post,
    _wait_in_thread,
    needs_pg,
    until,
)

pytestmark = needs_pg  # runs with the PostgreSQL suite (.ci/run), beside the other PG faults


@dataclass
class Cluster:
    bindir: Path
    data: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/keystead"

    def ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60"]
            + ["-l", str(self.data.parent / "server.log"), "-o", opts, *args],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL's server programs are missing (Debian package postgresql)")
    bindir = Path(found[-1]).parent
    # initdb refuses root; the postgres user must reach the folder (pytest's tmp is 0700)
    root = Path(tempfile.mkdtemp(prefix="keystead-pg-", dir="/tmp"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    c = Cluster(bindir, root / "data", free_port(), run_as)
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(c.data), "-A", "trust", "-U", "postgres"]
            + ["--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        c.ctl("start")
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres"]
            + ["keystead"],
            check=True,
            capture_output=True,
        )
        yield c
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(c.data), "stop", "-m", "immediate"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _ready(url: str) -> int:
    return httpx.get(url + "/v1/ready", timeout=10).status_code


def test_a_database_restart_under_load_is_503_json_then_recovers(
    cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "svc").mkdir()
    with ServiceProcess(cluster.url, tmp_path / "svc") as svc:
        dev = _device(tmp_path, svc.url)
        outcomes: list[tuple[str, float]] = []  # (what, seconds it took)
        stop = threading.Event()

        def reader() -> None:
            client = _client(dev, svc.url)
            while not stop.is_set():
                start = time.monotonic()
                try:
                    client.get(f"/accounts/{dev.account}/collections/notes/items")
                    what = "ok"
                except Unavailable:  # raised for the service's own 503 JSON only
                    what = "503"
                except Exception as e:  # anything else is a failure of the test
                    what = f"{type(e).__name__}: {e}"
                outcomes.append((what, time.monotonic() - start))
                time.sleep(0.01)

        acked: list[int] = []  # messages the service answered as stored

        def writer() -> None:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    acked.append(_post(dev, svc.url)[0])
                    what = "ok"
                except Unavailable:
                    what = "503"
                except Exception as e:
                    what = f"{type(e).__name__}: {e}"
                outcomes.append((what, time.monotonic() - start))
                time.sleep(0.01)

        across_out: list[str] = []

        def wait_across() -> None:  # a long poll open across the outage: answered, not hung
            try:
                _client(dev, svc.url).get(
                    f"/accounts/{dev.account}/spool/messages",
                    params={"after": 10**9, "wait": 8},
                    timeout=30,
                )
                across_out.append("answered")
            except Unavailable:
                across_out.append("503")
            except Exception as e:
                across_out.append(f"{type(e).__name__}: {e}")

        across = threading.Thread(target=wait_across)
        across.start()
        readers = [threading.Thread(target=reader) for _ in range(3)]
        readers += [threading.Thread(target=writer) for _ in range(2)]
        for t in readers:
            t.start()
        time.sleep(1)
        cluster.ctl("stop", "-m", "fast")
        down_at = len(outcomes)
        time.sleep(2)
        assert _ready(svc.url) == 503  # readiness says the database is away
        cluster.ctl("start")
        until(  # the pool and the listener come back by themselves
            lambda: _ready(svc.url) == 200, 30, "not ready 30 s after the database came back"
        )
        time.sleep(1)
        stop.set()
        for t in readers:
            t.join(30)

        across.join(30)
        assert across_out in (["answered"], ["503"]), across_out
        kinds = {what for what, _ in outcomes}
        assert kinds <= {"ok", "503"}, kinds
        assert "503" in {what for what, _ in outcomes[down_at:]}  # the outage was seen
        assert outcomes[-1][0] == "ok"
        assert max(took for _, took in outcomes) < 10  # a 503 is quick: no hang
        # the listener reconnected: a waiter is woken by a post, well before its deadline
        waiter, out = _wait_in_thread(_client(dev, svc.url), dev.account, wait=30)
        time.sleep(0.3)
        _post(dev, svc.url)
        waiter.join(40)
        assert out["answer"]["messages"] and out["took"] < 10  # type: ignore[index,operator]
        stored = {
            m["id"]
            for m in _client(dev, svc.url).get(
                f"/accounts/{dev.account}/spool/messages", params={"after": 0, "limit": 20000}
            )["messages"]
        }
        assert len(acked) > 10 and set(acked) <= stored  # nothing answered as stored is lost
        log = (tmp_path / "svc" / "service.log").read_text()
        assert "Traceback" not in log
