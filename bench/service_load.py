"""A service that holds a crowd (issue 12): every figure side by side in one run.

    python bench/service_load.py [--seconds 5] [--waiters 10000] [--pg URL]

Rows:
- hello: a bare uvicorn "hello" app, and the service's own /v1/health (the trivial endpoint
  of the same server): the load generator's ceiling, to show it is not the bottleneck.
- signed reads / writes per second on one process (SQLite), as ratios to "hello";
  signed reads on PostgreSQL with 1 and 2 processes (``--workers 2``).
- idle waiters: N long polls held by one process: its CPU over a quiet window, and the
  p99 of a signed read meanwhile.
- isolation: one account sends 20,000-capsule re-encryptions back to back; another
  account's signed reads p99.
- wake latency: a waiter on process B woken by a post to process A (PostgreSQL
  LISTEN/NOTIFY), directly and through nginx.
- re-encryption: capsules per second through the batch endpoint vs raw umbral_pre.

The generator is asyncio over raw keep-alive sockets in its own processes, with requests
signed before the timed window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine, new_account, pct  # noqa: E402
from keystead.core._encoding import b64e  # noqa: E402
from keystead.core.device import Device  # noqa: E402
from keystead.core.requests import sign_request  # noqa: E402
from keystead.core.testing import ServiceProcess, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELLO = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"17")]})
    await send({"type": "http.response.body", "body": b'{"hello":"world"}'})
'''


# ------------------------------------------------------------------ the load generator
def _request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1",
             f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _drive(port: int, reqs: list[bytes], conns: int, seconds: float
                 ) -> tuple[int, list[float], int]:
    """Send the prepared requests over ``conns`` keep-alive connections for ``seconds``."""
    it = iter(reqs)
    lat: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        try:
            while time.perf_counter() < deadline:
                raw = next(it, None)
                if raw is None:
                    return
                t = time.perf_counter()
                status = await _exchange(reader, writer, raw)
                lat.append(time.perf_counter() - t)
                if status >= 400:
                    bad += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    took = time.perf_counter() - start
    return int(len(lat) / took), lat, bad


def _gen_proc(port: int, make: Any, n: int, conns: int, seconds: float, q: Any) -> None:
    reqs = make(n)
    q.put(asyncio.run(_drive(port, reqs, conns, seconds)))


def load(port: int, make: Any, *, rate_guess: int, conns: int = 32, seconds: float = 5,
         procs: int = 2) -> dict[str, Any]:
    """Run ``procs`` generator processes; ``make(n)`` builds n prepared requests."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    n = int(rate_guess * seconds / procs) + 200
    ps = [ctx.Process(target=_gen_proc, args=(port, make, n, conns // procs, seconds, q))
          for _ in range(procs)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    lat = [x for _, ls, _ in results for x in ls]
    return {"rate": sum(r for r, _, _ in results), "p50_ms": pct(lat, 50) * 1000,
            "p99_ms": pct(lat, 99) * 1000, "errors": sum(b for _, _, b in results)}


class Signed:
    """Picklable request factory: n requests signed by one device (unique nonces)."""

    def __init__(self, dev: Device, method: str, path: str, body: Any = None) -> None:
        self.account, self.device = dev.account, dev.device_id
        self.key = dev.keys.signing
        self.method, self.path, self.body = method, path, body

    def __call__(self, n: int) -> list[bytes]:
        out = []
        for i in range(n):
            body = b"" if self.body is None else json.dumps(self.body(i)).encode()
            h = sign_request(self.key, account=self.account, device=self.device,
                             method=self.method, path=self.path, body=body,
                             time=int(time.time()))
            if body:
                h["content-type"] = "application/json"
            out.append(_request(self.method, self.path, body, h))
        return out


class Plain:
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, n: int) -> list[bytes]:
        return [_request("GET", self.path, b"", {})] * n


def _item(i: int) -> dict[str, Any]:
    return {"items": [{"id": f"i{os.getpid()}-{i}-{time.monotonic_ns()}", "version": 1,
                       "epoch": 1, "ciphertext": b64e(b"c" * 200), "deleted": False,
                       "seq": 0}]}


# ------------------------------------------------------------------ processes
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


def hello_server(port: int, work: Path) -> subprocess.Popen[bytes]:
    (work / "hello_app.py").write_text(HELLO)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "hello_app:app", "--port",
                             str(port), "--log-level", "warning", "--no-access-log"],
                            cwd=work)
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc


def device_on(svc: ServiceProcess, root: Path, name: str) -> Device:
    return new_account(svc, root, name, ("notes", "bench"))


def _prep_collection(dev: Device) -> None:
    from keystead.core.collections import Collection

    c = Collection(dev, "notes")
    for i in range(10):
        c.put(f"item{i}", b"x" * 100)


# ------------------------------------------------------------------ scenarios
async def _hold_waiters(port: int, reqs: list[bytes], ready: threading.Event,
                        stop: threading.Event) -> int:
    held = 0

    async def one(raw: bytes) -> None:
        nonlocal held
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        held += 1
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(reader.read(65536), 1)
                    return
                except TimeoutError:
                    continue
        finally:
            writer.close()

    tasks = []
    for i in range(0, len(reqs), 200):
        tasks += [asyncio.ensure_future(one(r)) for r in reqs[i:i + 200]]
        await asyncio.sleep(0.05)
    ready.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return held


def idle_waiters(svc: ServiceProcess, dev: Device, reader_dev: Device, n: int,
                 seconds: float) -> dict[str, Any]:
    # Establishing 10,000 signed long polls takes longer than the default 60 s maximum
    # (each authenticates, a nonce write): the bench service allows 600 s waits.
    path = f"/v1/accounts/{dev.account}/spool/bench?after=0&wait=600"
    reqs = Signed(dev, "GET", path)(n)
    ready, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: asyncio.run(_hold_waiters(svc.port, reqs, ready,
                                                                  stop)))
    t.start()
    ready.wait()
    import httpx

    for _ in range(600):  # every waiter authenticated and parked
        text = httpx.get(svc.url + "/metrics", timeout=10).text
        line = next(x for x in text.splitlines() if x.startswith("keystead_waiters "))
        if float(line.split()[1]) >= n * 0.99:
            break
        time.sleep(0.5)
    waiting = float(line.split()[1])
    time.sleep(3)  # the last ones finish authenticating
    assert svc.process is not None
    c0, t0 = tree_cpu(svc.process.pid), time.perf_counter()
    time.sleep(seconds)
    cpu = (tree_cpu(svc.process.pid) - c0) / (time.perf_counter() - t0)
    reads = load(svc.port, Signed(reader_dev, "GET",
                                  f"/v1/accounts/{reader_dev.account}/collections/notes/items"),
                 rate_guess=100, conns=2, seconds=seconds, procs=1)
    stop.set()
    t.join()
    return {"waiters": int(waiting), "idle_cpu_pct": cpu * 100, **{
        f"read_{k}": v for k, v in reads.items()}}


def isolation(svc: ServiceProcess, heavy: Device, reader_dev: Device,
              seconds: float) -> dict[str, Any]:
    from keystead.core.client import ServiceClient, Signer

    capsule = heavy.chain().collection("notes").epochs[1][0]
    body = {"requests": [{"key": "notes", "capsule": b64e(capsule)}] * 20_000}
    stop = threading.Event()
    done = [0]

    def hammer() -> None:
        client = ServiceClient(svc.url, signer=Signer(heavy.account, heavy.device_id,
                                                      heavy.keys.signing), timeout=300)
        while not stop.is_set():
            client.post(f"/accounts/{heavy.account}/reencrypt", body)
            done[0] += 20_000
        client.close()

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(2)
    reads = load(svc.port, Signed(reader_dev, "GET",
                                  f"/v1/accounts/{reader_dev.account}/collections/notes/items"),
                 rate_guess=100, conns=2, seconds=seconds, procs=1)
    stop.set()
    t.join()
    return {"capsules_done": done[0], **{f"read_{k}": v for k, v in reads.items()}}


def wake_latency(a: ServiceProcess, b: ServiceProcess, dev: Device, rounds: int,
                 via: str | None = None) -> dict[str, Any]:
    from keystead.core.client import ServiceClient, Signer

    signer = Signer(dev.account, dev.device_id, dev.keys.signing)
    waiter = ServiceClient(via or b.url, signer=signer)
    poster = ServiceClient(via or a.url, signer=signer)
    cursor = 0
    lat = []
    for _ in range(rounds):
        out: dict[str, Any] = {}

        def wait(after: int = cursor, out: dict[str, Any] = out) -> None:
            out["r"] = waiter.get(f"/accounts/{dev.account}/spool/bench",
                                  params={"after": after, "wait": 10}, timeout=20)
            out["t"] = time.perf_counter()

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.05)
        t0 = time.perf_counter()
        cursor = poster.post(f"/accounts/{dev.account}/spool/bench", {"body": "aGk"})["id"]
        t.join()
        lat.append(out["t"] - t0)
    waiter.close()
    poster.close()
    return {"p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "rounds": rounds}


def reencrypt_rates(svc: ServiceProcess, dev: Device, batches: int) -> dict[str, Any]:
    import umbral_pre
    from keystead.core.client import ServiceClient, Signer

    alice, bob, signer = (umbral_pre.SecretKey.random() for _ in range(3))
    kfrag = umbral_pre.generate_kfrags(
        delegating_sk=alice, receiving_pk=bob.public_key(), signer=umbral_pre.Signer(signer),
        threshold=1, shares=1, sign_delegating_key=True, sign_receiving_key=True)[0]
    capsules = [umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(2000)]
    t = time.perf_counter()
    for c in capsules:
        umbral_pre.reencrypt(c, kfrag)
    raw = len(capsules) / (time.perf_counter() - t)
    capsule = dev.chain().collection("notes").epochs[1][0]
    body = {"requests": [{"key": "notes", "capsule": b64e(capsule)}] * 10_000}
    client = ServiceClient(svc.url, signer=Signer(dev.account, dev.device_id,
                                                  dev.keys.signing), timeout=300)
    client.post(f"/accounts/{dev.account}/reencrypt", {"requests": body["requests"][:10]})
    t = time.perf_counter()
    for _ in range(batches):
        client.post(f"/accounts/{dev.account}/reencrypt", body)
    rate = batches * 10_000 / (time.perf_counter() - t)
    client.close()
    return {"raw_per_s": raw, "service_per_s": rate, "ratio": rate / raw}


def nginx_front(work: Path, backends: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    sys.path.insert(0, str(ROOT / "deploy"))
    import render

    prefix = work / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render.render(port, backends))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)],
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc, f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--waiters", type=int, default=10_000)
    ap.add_argument("--pg", default=os.environ.get("KEYSTEAD_BENCH_DATABASE_URL", ""))
    ap.add_argument("--only", default="", help="comma-separated sections")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    only = set(filter(None, args.only.split(",")))

    def want(section: str) -> bool:
        return not only or section in only

    rows: list[dict[str, Any]] = []
    secs = args.seconds
    big = {"KEYSTEAD_ACCOUNTS_PER_SOURCE_HOUR": "100000",
           "KEYSTEAD_REENCRYPT_PER_MINUTE": "100000000", "KEYSTEAD_QUOTA_ITEMS": "10000000",
           "KEYSTEAD_MAX_WAIT": "600"}
    with tempfile.TemporaryDirectory(prefix="keystead-load-") as tmp:
        root = Path(tmp)
        hello_port = free_port()
        hello = hello_server(hello_port, root)
        svc = start_service(f"sqlite:///{root}/s.sqlite", root / "sqlite", **big)
        try:
            reader = device_on(svc, root, "reader")
            _prep_collection(reader)
            items = f"/v1/accounts/{reader.account}/collections/notes/items"
            h = load(hello_port, Plain("/"), rate_guess=6000, seconds=secs)
            rows.append({"what": "bare uvicorn hello", **h})
            health = load(svc.port, Plain("/v1/health"), rate_guess=6000, seconds=secs)
            rows.append({"what": "service /v1/health (generator ceiling)", **health})
            if want("reads"):
                r = load(svc.port, Signed(reader, "GET", items), rate_guess=1500,
                         seconds=secs)
                rows.append({"what": "signed reads, 1 process, SQLite", **r,
                             "ratio_to_hello": r["rate"] / h["rate"],
                             "generator_headroom": health["rate"] / r["rate"]})
            if want("writes"):
                w = load(svc.port, Signed(reader, "POST", items, _item), rate_guess=800,
                         seconds=secs)
                rows.append({"what": "signed single-item writes, 1 process, SQLite", **w,
                             "ratio_to_hello": w["rate"] / h["rate"]})
            if want("reencrypt"):
                rows.append({"what": "re-encryption batch endpoint (10,000 capsules)",
                             **reencrypt_rates(svc, reader, 3)})
            if want("isolation"):
                heavy = device_on(svc, root, "heavy")
                rows.append({"what": "reads while another account re-encrypts 20,000 "
                             "capsules back to back", **isolation(svc, heavy, reader, secs)})
            if want("waiters"):
                idle = device_on(svc, root, "idle")
                rows.append({"what": f"{args.waiters} idle long polls on one process",
                             **idle_waiters(svc, idle, reader, args.waiters, secs)})
        finally:
            svc.stop()
        if args.pg and (want("pg") or want("wake")):
            from sqlalchemy import create_engine, text

            eng = create_engine(args.pg)
            with eng.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            eng.dispose()
            for workers in (1, 2) if want("pg") else ():
                pg = start_service(args.pg, root / f"pg{workers}", workers=workers, **big)
                try:
                    dev = device_on(pg, root / f"pgw{workers}", f"pg{workers}")
                    _prep_collection(dev)
                    r = load(pg.port, Signed(dev, "GET",
                                             f"/v1/accounts/{dev.account}/collections/notes/"
                                             "items"), rate_guess=1500, seconds=secs)
                    rows.append({"what": f"signed reads, PostgreSQL, --workers {workers}", **r,
                                 "ratio_to_hello": r["rate"] / h["rate"]})
                finally:
                    pg.stop()
            if want("wake"):
                a = start_service(args.pg, root / "wa", **big)
                b = start_service(args.pg, root / "wb", **big)
                ngx, via = nginx_front(root, [a.port, b.port])
                try:
                    dev = device_on(a, root / "wake", "wake")
                    rows.append({"what": "wake: post on A, waiter on B (PostgreSQL NOTIFY)",
                                 **wake_latency(a, b, dev, 100)})
                    rows.append({"what": "wake: both through nginx (round robin)",
                                 **wake_latency(a, b, dev, 100, via=via)})
                finally:
                    ngx.terminate()
                    ngx.wait()
                    a.stop()
                    b.stop()
        hello.terminate()
        hello.wait()
    print(f"\nService under load  ({machine()})")
    for row in rows:
        rest = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items() if k != "what")
        print(f"- {row['what']}: {rest}")


if __name__ == "__main__":
    main()
