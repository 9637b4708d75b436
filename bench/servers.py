"""The processes the service benches start: the service itself, bare uvicorn peers, nginx
in front, and the PostgreSQL database they use; and the CPU those processes spend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from keystead.core.testing import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
HELLO = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"17")]})
    await send({"type": "http.response.body", "body": b'{"hello":"world"}'})
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    total = cpu_seconds(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += tree_cpu(int(child))
    return total


def start_service(url: str, work: Path, workers: int = 1, **env: str) -> ServiceProcess:
    work.mkdir(parents=True, exist_ok=True)
    old = dict(os.environ)
    os.environ.update({"KEYSTEAD_ACCESS_LOG": "false", **env})
    try:
        svc = ServiceProcess(url, work, workers=workers)
        svc.start(timeout=120)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return svc


def hello_server(port: int, work: Path, http: str = "auto") -> subprocess.Popen[bytes]:
    """Bare uvicorn, as the service runs it (the asyncio loop; HTTP parser ``http``: auto is
    httptools, a service dependency)."""
    (work / "hello_app.py").write_text(HELLO)
    return uvicorn_server("hello_app:app", port, work, http)


def uvicorn_server(
    spec: str, port: int, cwd: Path, http: str = "auto", **env: str
) -> subprocess.Popen[bytes]:
    """``uvicorn SPEC`` on ``port`` with the service's loop, started when it answers."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            spec,
            "--port",
            str(port),
            "--loop",
            "asyncio",
            "--http",
            http,
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=cwd,
        env={**os.environ, **env},
    )
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc


def nginx_front(work: Path, backends: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    sys.path.insert(0, str(ROOT / "deploy"))
    import render

    prefix = work / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render.render(port, backends))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc, f"http://127.0.0.1:{port}"


DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/keystead_bench"


def prepare_pg(url: str) -> str:
    """Empty the bench database (created first when it is the default one); '' when ready,
    else why the PostgreSQL rows are left out."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    try:
        if url == DEFAULT_PG:
            admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                if (
                    conn.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = 'keystead_bench'")
                    ).first()
                    is None
                ):
                    conn.execute(text("CREATE DATABASE keystead_bench"))
            admin.dispose()
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    except (OperationalError, ImportError) as e:
        return f"PostgreSQL at {url} unusable: {str(e).splitlines()[0]}"
    return ""
