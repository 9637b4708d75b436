"""A service that holds a crowd (issue 12): every figure side by side in one run.

    python bench/service_load.py [--seconds 5] [--waiters 10000] [--pg URL] [--only SECTIONS]

Rows:
- hello: a bare uvicorn "hello" app, and the service's own /v1/health (the trivial endpoint
  of the same server): the load generator's ceiling, to show it is not the bottleneck.
- signed reads / writes per second on one process (SQLite), as ratios to "hello";
  signed reads on PostgreSQL with 1 and 2 processes (``--workers 2``); for context, the
  same signed read as a bare ASGI app on the service's own Store (``bare_read.py``), and
  two bounds on any design of that read on this stack: hello plus one Ed25519 check, and
  the read with no authentication and no thread pool.
- idle waiters: N long polls held by one process: its CPU over a quiet window, and the
  p99 of a signed read meanwhile.
- isolation: one account sends 20,000-capsule re-encryptions back to back; another
  account's signed reads p99.
- wake latency: a waiter on process B (a long poll on the ``messages`` spool) woken by a
  direct message posted to process A (PostgreSQL LISTEN/NOTIFY), directly and through nginx.
- re-encryption: capsules per second through the batch endpoint vs raw umbral_pre.

The generator is asyncio over raw keep-alive sockets in its own processes, with requests
signed (protocol version 2: the service origin is signed too) before the timed window.
Writes are real version 2 items: sealed under the collection's current epoch and signed by
the writer device, one new id per request. PostgreSQL rows use their own database
(``keystead_bench``, created if missing, emptied each run) unless ``--pg`` names another;
with ``--pg ''`` or no server they are left out and the table says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine, new_account, pct  # noqa: E402
from keystead.core import seal_to_key  # noqa: E402
from keystead.core._encoding import b64e  # noqa: E402
from keystead.core.device import Device  # noqa: E402
from keystead.core.testing import ServiceProcess, free_port  # noqa: E402
from loadgen import NewItems, Plain, Signed, load  # noqa: E402
from servers import (  # noqa: E402
    DEFAULT_PG,
    hello_server,
    nginx_front,
    prepare_pg,
    start_service,
    tree_cpu,
    uvicorn_server,
)


# ------------------------------------------------------------------ the load generator
def direct_message(sender: Device, to: Device, text: str = "wake") -> dict[str, Any]:
    """A real direct message from ``sender`` to ``to``'s account: a fresh message key sealed to
    the current epoch of its ``messages`` key, the body under it, the envelope signed."""
    from keystead.adapters.messaging._envelope import (
        body_ad,
        make_envelope,
        new_message_id,
        seal_body,
    )

    chain = to.chain(refresh=False)
    key, message_id, now = os.urandom(32), new_message_id(), int(time.time())
    body = seal_body(key, text, body_ad(message_id, sender.address, sender.device_id, now, None))
    wire = make_envelope(
        sender.keys.signing,
        message_id=message_id,
        sender=sender.address,
        device=sender.device_id,
        to=to.address,
        time=now,
        group=None,
        sealed_key=seal_to_key(chain, "messages", key),
        body=body,
    )
    return {"body": b64e(wire)}


def device_on(svc: ServiceProcess, root: Path, name: str) -> Device:
    return new_account(svc, root, name, ("notes", "messages"))


def _prep_collection(dev: Device) -> None:
    from keystead.core.collections import Collection

    c = Collection(dev, "notes")
    for i in range(10):
        c.put(f"item{i}", b"x" * 100)


def _items(dev: Device) -> str:
    return f"/v1/accounts/{dev.account}/collections/notes/items"


# ------------------------------------------------------------------ scenarios
async def _hold_waiters(
    port: int,
    make: Signed,
    n: int,
    ready: threading.Event,
    stop: threading.Event,
    out: dict[str, Any],
) -> None:
    out.update(opened=0, answered_early=0, failed=0)

    async def one(raw: bytes) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            out["failed"] += 1
            return
        writer.write(raw)
        out["opened"] += 1
        try:
            while not stop.is_set():
                try:
                    if await asyncio.wait_for(reader.read(65536), 1):
                        out["answered_early"] += 1  # a refusal, or the wait expired
                    return
                except TimeoutError:
                    continue
        finally:
            writer.close()

    tasks = []
    for i in range(0, n, 200):
        # signed just before they are sent, so every one is inside the time window
        tasks += [asyncio.ensure_future(one(r)) for r in make(min(200, n - i))]
        await asyncio.sleep(0.05)
    ready.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def _waiters(url: str) -> float:
    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    line = next(x for x in text.splitlines() if x.startswith("keystead_waiters "))
    return float(line.split()[1])


def idle_waiters(
    svc: ServiceProcess, dev: Device, reader_dev: Device, n: int, seconds: float
) -> dict[str, Any]:
    # Establishing 10,000 signed long polls takes longer than the default 60 s maximum
    # (each authenticates, a nonce write): the bench service allows 600 s waits.
    path = f"/v1/accounts/{dev.account}/spool/messages?after=0&wait=600"
    make = Signed(dev, svc.url, "GET", path)
    ready, stop = threading.Event(), threading.Event()
    held: dict[str, Any] = {}
    t0 = time.perf_counter()
    t = threading.Thread(
        target=lambda: asyncio.run(_hold_waiters(svc.port, make, n, ready, stop, held))
    )
    t.start()
    ready.wait()
    best, since = 0.0, time.perf_counter()
    while time.perf_counter() - t0 < 900:  # every waiter authenticated and parked
        waiting = _waiters(svc.url)
        if waiting >= n:
            break
        if waiting > best:
            best, since = waiting, time.perf_counter()
        elif time.perf_counter() - since > 30:  # no progress for 30 s: take what is held
            break
        time.sleep(0.5)
    assert svc.process is not None
    # The gauge counts a waiter when it subscribes, before its first spool read has gone
    # through the thread pool: wait until the process is idle (2 s under 5 % of a core, at
    # most 300 s) before the timed window, so it measures holding, not establishing.
    settle = time.perf_counter()
    while time.perf_counter() - settle < 300:
        c0 = tree_cpu(svc.process.pid)
        time.sleep(2)
        if tree_cpu(svc.process.pid) - c0 < 0.1:
            break
    established_s = time.perf_counter() - t0
    waiting = _waiters(svc.url)
    c0, w0 = tree_cpu(svc.process.pid), time.perf_counter()
    time.sleep(seconds)
    cpu = (tree_cpu(svc.process.pid) - c0) / (time.perf_counter() - w0)
    reads = load(
        svc.port,
        Signed(reader_dev, svc.url, "GET", _items(reader_dev)),
        rate_guess=1500,
        conns=2,
        seconds=seconds,
        procs=1,
    )
    still = _waiters(svc.url)
    stop.set()
    t.join()
    return {
        "asked": n,
        "waiters": int(waiting),
        "still_waiting": int(still),
        "established_s": established_s,
        "idle_cpu_pct": cpu * 100,
        **held,
        **{f"read_{k}": v for k, v in reads.items()},
    }


def _bare_read(
    root: Path, reader: Device, mode: str, secs: float, checks: int = 1
) -> dict[str, Any]:
    """``bench/bare_read.py`` in ``mode`` under uvicorn on the service's database, loaded
    with the reader's signed reads."""
    port = free_port()
    proc = uvicorn_server(
        "bare_read:app",
        port,
        Path(__file__).parent,
        KEYSTEAD_BARE_DB=f"sqlite:///{root}/s.sqlite",
        KEYSTEAD_BARE_MODE=mode,
        KEYSTEAD_BARE_CHECKS=str(checks),
    )
    try:
        req = Signed(reader, f"http://127.0.0.1:{port}", "GET", _items(reader))
        req.check()
        return load(port, req, rate_guess=3000, seconds=secs)
    finally:
        proc.terminate()
        proc.wait()


def _capsule_request(dev: Device) -> dict[str, Any]:
    info = dev.chain().collection("notes").epoch(1)
    assert info.capsule is not None
    return {"key": "notes", "epoch": 1, "capsule": b64e(info.capsule)}


def isolation(
    svc: ServiceProcess, heavy: Device, reader_dev: Device, seconds: float
) -> dict[str, Any]:
    from keystead.core.client import ServiceClient, Signer

    body = {"requests": [_capsule_request(heavy)] * 20_000}
    stop = threading.Event()
    done = [0]
    took = [0.0]

    def hammer() -> None:
        client = ServiceClient(
            svc.url, signer=Signer(heavy.account, heavy.device_id, heavy.keys.signing), timeout=300
        )
        t = time.perf_counter()
        while not stop.is_set():
            client.post(f"/accounts/{heavy.account}/reencrypt", body)
            done[0] += 20_000
        took[0] = time.perf_counter() - t
        client.close()

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(2)
    reads = load(
        svc.port,
        Signed(reader_dev, svc.url, "GET", _items(reader_dev)),
        rate_guess=1500,
        conns=2,
        seconds=seconds,
        procs=1,
    )
    stop.set()
    t.join()
    return {
        "capsules_done": done[0],
        "capsules_per_s": done[0] / took[0],
        **{f"read_{k}": v for k, v in reads.items()},
    }


def wake_latency(
    a: ServiceProcess,
    b: ServiceProcess,
    dev: Device,
    sender: Device,
    rounds: int,
    via: str | None = None,
) -> dict[str, Any]:
    """``dev`` long-polls its ``messages`` spool on B; ``sender`` posts a direct message to
    it on A (both through ``via`` when given); latency from the post to the wake."""
    from keystead.core.client import ServiceClient, Signer

    waiter = ServiceClient(
        via or b.url, signer=Signer(dev.account, dev.device_id, dev.keys.signing)
    )
    poster = ServiceClient(
        via or a.url, signer=Signer(sender.account, sender.device_id, sender.keys.signing)
    )
    cursor = max(
        [
            m["id"]
            for m in waiter.get(f"/accounts/{dev.account}/spool/messages", params={"after": 0})[
                "messages"
            ]
        ]
        or [0]
    )
    lat: list[float] = []
    posted: list[float] = []  # the post's own round trip, answered after its commit
    for _ in range(rounds):
        out: dict[str, Any] = {}

        def wait(after: int = cursor, out: dict[str, Any] = out) -> None:
            out["r"] = waiter.get(
                f"/accounts/{dev.account}/spool/messages",
                params={"after": after, "wait": 10},
                timeout=20,
            )
            out["t"] = time.perf_counter()

        message = direct_message(sender, dev)
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.05)
        t0 = time.perf_counter()
        cursor = poster.post(f"/messaging/direct/{dev.account}", message)["id"]
        posted.append(time.perf_counter() - t0)
        t.join()
        if [m["id"] for m in out["r"]["messages"]] != [cursor]:
            raise SystemExit(f"wake: the waiter got {out['r']} instead of message {cursor}")
        lat.append(out["t"] - t0)
    waiter.close()
    poster.close()
    return {
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "post_p50_ms": pct(posted, 50) * 1000,
        "rounds": rounds,
    }


def reencrypt_rates(svc: ServiceProcess, dev: Device, batches: int) -> dict[str, Any]:
    """The batch endpoint against raw ``umbral_pre.reencrypt`` in one process (the service's
    CPU pool is one worker process on 2 cores): raw is measured before and after the
    service's runs and averaged, since the machine's load moves between them.

    Two service figures: the bench's usual request (one epoch's capsule 10,000 times, as
    every device reading that epoch sends it: the worker parses it once) and 10,000
    distinct capsules (each parsed, i.e. checked, once). "raw" takes parsed capsules and
    returns cfrag objects; the floor row does what any service must per distinct capsule:
    parse the capsule's bytes and serialize the cfrag."""
    import umbral_pre
    from keystead.core.client import ServiceClient, Signer

    alice, bob, signer = (umbral_pre.SecretKey.random() for _ in range(3))
    kfrag = umbral_pre.generate_kfrags(
        delegating_sk=alice,
        receiving_pk=bob.public_key(),
        signer=umbral_pre.Signer(signer),
        threshold=1,
        shares=1,
        sign_delegating_key=True,
        sign_receiving_key=True,
    )[0]
    capsules = [umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(2000)]
    raw_bytes = [bytes(c) for c in capsules]

    def raw() -> float:
        t = time.perf_counter()
        for c in capsules:
            umbral_pre.reencrypt(c, kfrag)
        return len(capsules) / (time.perf_counter() - t)

    def floor() -> float:
        t = time.perf_counter()
        for b in raw_bytes:
            bytes(umbral_pre.reencrypt(umbral_pre.Capsule.from_bytes(b), kfrag))
        return len(raw_bytes) / (time.perf_counter() - t)

    raw_before, floor_before = raw(), floor()
    body = {"requests": [_capsule_request(dev)] * 10_000}
    distinct = {
        "requests": [
            {"key": "notes", "epoch": 1, "capsule": b64e(bytes(c))}
            for c in (umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(10_000))
        ]
    }
    client = ServiceClient(
        svc.url, signer=Signer(dev.account, dev.device_id, dev.keys.signing), timeout=300
    )
    client.post(f"/accounts/{dev.account}/reencrypt", {"requests": body["requests"][:10]})
    t = time.perf_counter()
    for _ in range(batches):
        client.post(f"/accounts/{dev.account}/reencrypt", body)
    rate = batches * 10_000 / (time.perf_counter() - t)
    t = time.perf_counter()
    client.post(f"/accounts/{dev.account}/reencrypt", distinct)
    distinct_rate = 10_000 / (time.perf_counter() - t)
    client.close()
    raw_after, floor_after = raw(), floor()
    raw_rate = (raw_before + raw_after) / 2
    floor_rate = (floor_before + floor_after) / 2
    return {
        "raw_per_s": raw_rate,
        "raw_range": (min(raw_before, raw_after), max(raw_before, raw_after)),
        "floor_per_s": floor_rate,
        "service_per_s": rate,
        "ratio": rate / raw_rate,
        "distinct_per_s": distinct_rate,
    }


# ------------------------------------------------------------------ the table
def _n(v: float, unit: str = "") -> str:
    text = f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
    return text + unit


def _lat(r: dict[str, Any], prefix: str = "") -> str:
    return f"p50 {_n(r[prefix + 'p50_ms'], ' ms')}, p99 {_n(r[prefix + 'p99_ms'], ' ms')}"


def _rate(r: dict[str, Any]) -> str:
    errors = f", {r['errors']} ERRORS" if r.get("errors") else ""
    return f"{_n(r['rate'], '/s')} ({_lat(r)}{errors})"


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def print_table(rows: list[tuple[str, str, str, str, str, str]], notes: list[str]) -> None:
    print(f"\nService under load  ({machine()})\n")
    head = ("figure", "this run", "side by side", "ratio", "target", "met")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in notes:
        print(f"\n- {note}")


# ------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--waiters", type=int, default=10_000)
    ap.add_argument(
        "--pg",
        default=os.environ.get("KEYSTEAD_BENCH_DATABASE_URL", DEFAULT_PG),
        help="PostgreSQL URL for the multi-process rows ('' leaves them out); "
        "its public schema is emptied",
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated sections: reads, writes, reencrypt, isolation, waiters, pg, wake",
    )
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    only = set(filter(None, args.only.split(",")))

    def want(section: str) -> bool:
        return not only or section in only

    table: list[tuple[str, str, str, str, str, str]] = []
    notes: list[str] = []

    def row(
        figure: str,
        value: str,
        side: str = "",
        ratio: float | None = None,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        table.append(
            (figure, value, side, "" if ratio is None else f"{ratio:.3g}", target, _met(ok))
        )

    secs = args.seconds
    big = {
        "KEYSTEAD_ACCOUNTS_PER_SOURCE_HOUR": "100000",
        "KEYSTEAD_REENCRYPT_PER_MINUTE": "100000000",
        "KEYSTEAD_QUOTA_ITEMS": "10000000",
        "KEYSTEAD_MAX_WAIT": "600",
    }
    with tempfile.TemporaryDirectory(prefix="keystead-load-") as tmp:
        root = Path(tmp)
        hello_port = free_port()
        hello_url = f"http://127.0.0.1:{hello_port}"
        hello = hello_server(hello_port, root)
        svc = start_service(f"sqlite:///{root}/s.sqlite", root / "sqlite", **big)
        try:
            reader = device_on(svc, root, "reader")
            _prep_collection(reader)
            reads_req = Signed(reader, svc.url, "GET", _items(reader))
            reads_req.check()
            h = load(hello_port, Plain(hello_url, "/"), rate_guess=6000, seconds=secs)
            hs = f"hello {_n(h['rate'], '/s')}"
            row("bare uvicorn hello (32 connections)", _rate(h))
            # for context: the same on uvicorn's pure-Python parser (h11), which the service
            # ran on before httptools; not a target
            h11_port = free_port()
            h11 = hello_server(h11_port, root, http="h11")
            try:
                h11r = load(
                    h11_port,
                    Plain(f"http://127.0.0.1:{h11_port}", "/"),
                    rate_guess=6000,
                    seconds=secs,
                )
            finally:
                h11.terminate()
                h11.wait()
            row(
                "bare uvicorn hello on h11 (context: the pure-Python parser)",
                _rate(h11r),
                hs,
                h11r["rate"] / h["rate"],
            )
            hs_h11 = f"; hello on h11 {_n(h11r['rate'], '/s')}"
            health = load(svc.port, Plain(svc.url, "/v1/health"), rate_guess=6000, seconds=secs)
            row(
                "service /v1/health (the generator's reach on this server)",
                _rate(health),
                hs,
                health["rate"] / h["rate"],
            )
            # the same light load as the latency rows below (2 connections, back to back)
            hq = load(
                hello_port, Plain(hello_url, "/"), rate_guess=3000, conns=2, seconds=secs, procs=1
            )
            quiet = load(svc.port, reads_req, rate_guess=1500, conns=2, seconds=secs, procs=1)
            hq_side = f"hello {_lat(hq)}"
            row(
                "signed read, quiet, 2 connections",
                _rate(quiet),
                hq_side,
                quiet["p99_ms"] / hq["p99_ms"],
            )
            peak = 0.0
            if want("reads"):
                r = load(svc.port, reads_req, rate_guess=1500, seconds=secs)
                peak = max(peak, r["rate"])
                row(
                    "signed reads, 1 process, SQLite",
                    _rate(r),
                    f"{hs}{hs_h11} (ratio {r['rate'] / h11r['rate']:.3g})",
                    r["rate"] / h["rate"],
                    "≥ 0.3 × hello",
                    r["rate"] / h["rate"] >= 0.3 and not r["errors"],
                )
                # context, on the same database (bench/bare_read.py): the same read with no
                # framework, and two bounds on any design of it on this stack
                bare = {
                    mode: _bare_read(root, reader, mode, secs)
                    for mode in ("read", "verify", "open")
                }
                row(
                    "the same signed read as a bare ASGI app on the service's Store "
                    "(no FastAPI, no middleware: bench/bare_read.py)",
                    _rate(bare["read"]),
                    f"{hs}; the service {_n(r['rate'], '/s')} = "
                    f"{r['rate'] / bare['read']['rate']:.2f} of it",
                    bare["read"]["rate"] / h["rate"],
                )
                row(
                    "bound: hello plus one Ed25519 check of the request, on the event loop "
                    "(no database, no nonce)",
                    _rate(bare["verify"]),
                    hs,
                    bare["verify"]["rate"] / h["rate"],
                )
                row(
                    "bound: the read and its JSON with no authentication at all, on the "
                    "event loop (no thread pool)",
                    _rate(bare["open"]),
                    hs,
                    bare["open"]["rate"] / h["rate"],
                )
            if want("writes"):
                writer = device_on(svc, root, "writer")
                new_items = Signed(
                    writer, svc.url, "POST", _items(writer), NewItems(writer, "notes")
                )
                new_items.check()
                w = load(svc.port, new_items, rate_guess=800, seconds=secs)
                peak = max(peak, w["rate"])
                row(
                    "signed single-item writes (new v2 items), 1 process, SQLite",
                    _rate(w),
                    f"{hs}{hs_h11} (ratio {w['rate'] / h11r['rate']:.3g})",
                    w["rate"] / h["rate"],
                    "≥ 0.15 × hello",
                    w["rate"] / h["rate"] >= 0.15 and not w["errors"],
                )
                two = _bare_read(root, reader, "verify", secs, checks=2)
                row(
                    "bound: hello plus two Ed25519 checks (a write's request and item "
                    "signatures), on the event loop, no database",
                    _rate(two),
                    hs,
                    two["rate"] / h["rate"],
                )
            if peak:
                row(
                    "generator headroom: /v1/health ÷ fastest signed rate",
                    _n(health["rate"], "/s"),
                    _n(peak, "/s"),
                    health["rate"] / peak,
                    "≥ 2",
                    health["rate"] / peak >= 2,
                )
            if want("reencrypt"):
                re = reencrypt_rates(svc, reader, 3)
                lo, hi = re["raw_range"]
                floor_ratio = re["floor_per_s"] / re["raw_per_s"]
                raw_side = (
                    f"raw umbral_pre.reencrypt {_n(re['raw_per_s'], '/s')} "
                    f"(before/after {_n(lo)}–{_n(hi)})"
                )
                row(
                    "re-encryption batch endpoint (10,000 capsules a request: an epoch's "
                    "capsule, as devices send it)",
                    _n(re["service_per_s"], " capsules/s"),
                    raw_side,
                    re["ratio"],
                    "≥ 0.6 × raw",
                    re["ratio"] >= 0.6,
                )
                row(
                    "the same with 10,000 distinct capsules (each parsed and checked)",
                    _n(re["distinct_per_s"], " capsules/s"),
                    f"{raw_side}; floor (parse + reencrypt + cfrag bytes) "
                    f"{_n(re['floor_per_s'], '/s')} = {floor_ratio:.2f} × raw",
                    re["distinct_per_s"] / re["raw_per_s"],
                )
            if want("isolation"):
                heavy = device_on(svc, root, "heavy")
                iso = isolation(svc, heavy, reader, secs)
                errors = f", {iso['read_errors']} ERRORS" if iso["read_errors"] else ""
                row(
                    "signed read while another account re-encrypts 20,000-capsule batches "
                    f"back to back ({_n(iso['capsules_per_s'], ' capsules/s')})",
                    _lat(iso, "read_") + errors,
                    f"quiet read p99 {_n(quiet['p99_ms'], ' ms')}; {hq_side}",
                    iso["read_p99_ms"] / quiet["p99_ms"],
                    "p99 < 100 ms",
                    iso["read_p99_ms"] < 100 and not iso["read_errors"],
                )
            if want("waiters"):
                idle = device_on(svc, root, "idle")
                wt = idle_waiters(svc, idle, reader, args.waiters, secs)
                n = wt["waiters"]
                row(
                    f"idle long polls held by one process (asked {wt['asked']:,})",
                    f"{n:,} ({wt['still_waiting']:,} still after the reads)",
                    f"established and settled in {wt['established_s']:.0f} s; {wt['failed']} "
                    f"connections failed, {wt['answered_early']} answered early",
                    n / wt["asked"],
                    f"{wt['asked']:,}",
                    n >= wt["asked"],
                )
                row(
                    f"service CPU with {n:,} idle long polls",
                    f"{wt['idle_cpu_pct']:.2g} %",
                    "",
                    None,
                    "< 5 % of a core",
                    wt["idle_cpu_pct"] < 5,
                )
                errors = f", {wt['read_errors']} ERRORS" if wt["read_errors"] else ""
                row(
                    f"signed read with {n:,} idle long polls",
                    _lat(wt, "read_") + errors,
                    f"quiet read p99 {_n(quiet['p99_ms'], ' ms')}; {hq_side}",
                    wt["read_p99_ms"] / quiet["p99_ms"],
                    "p99 < 50 ms",
                    wt["read_p99_ms"] < 50 and not wt["read_errors"],
                )
        finally:
            svc.stop()
        why = (
            prepare_pg(args.pg)
            if args.pg and (want("pg") or want("wake"))
            else "PostgreSQL rows not asked for"
        )
        if why:
            notes.append(f"PostgreSQL rows left out: {why}")
        else:
            pg_rates: dict[int, float] = {}
            pg_rtt: dict[int, float] = {}
            for workers in (1, 2) if want("pg") else ():
                # reuse_port: the generator's 32 keep-alive connections spread over both
                # workers (on the one shared socket most of them may land on one)
                spread = {"KEYSTEAD_REUSE_PORT": "true"} if workers > 1 else {}
                pg = start_service(args.pg, root / f"pg{workers}", workers=workers, **big, **spread)
                try:
                    dev = device_on(pg, root / f"pgw{workers}", f"pg{workers}")
                    _prep_collection(dev)
                    req = Signed(dev, pg.url, "GET", _items(dev))
                    req.check()
                    r = load(pg.port, req, rate_guess=1500, seconds=secs)
                    pg_rates[workers] = r["rate"]
                    # one keep-alive connection, one request at a time: no latency floor
                    # per process count (with --workers 2 it was 44 ms against 1.1 ms)
                    pg_rtt[workers] = load(
                        pg.port,
                        Plain(pg.url, "/v1/health"),
                        rate_guess=2000,
                        conns=1,
                        seconds=2,
                        procs=1,
                    )["p50_ms"]
                    row(
                        f"signed reads, PostgreSQL, --workers {workers}"
                        + (" (reuse_port)" if workers > 1 else ""),
                        _rate(r),
                        hs,
                        r["rate"] / h["rate"],
                    )
                finally:
                    pg.stop()
            if len(pg_rtt) == 2:
                row(
                    "keep-alive /v1/health round trip p50 on one connection, "
                    "PostgreSQL, --workers 2 (side: --workers 1)",
                    _n(pg_rtt[2], " ms"),
                    _n(pg_rtt[1], " ms"),
                    pg_rtt[2] / pg_rtt[1],
                    "no floor: < 2 × one worker",
                    pg_rtt[2] < 2 * pg_rtt[1],
                )
            if len(pg_rates) == 2:
                row(
                    "PostgreSQL reads, growth from 1 to 2 processes",
                    _n(pg_rates[2], "/s"),
                    _n(pg_rates[1], "/s"),
                    pg_rates[2] / pg_rates[1],
                    "> 1",
                    pg_rates[2] > pg_rates[1],
                )
            if want("wake"):
                a = start_service(args.pg, root / "wa", **big)
                b = start_service(args.pg, root / "wb", **big)
                ngx, via = nginx_front(root, [a.port, b.port])
                try:
                    dev = device_on(a, root / "wake", "wake")
                    sender = device_on(a, root / "wake", "sender")
                    for what, base in (
                        ("post on A, waiter on B (PostgreSQL NOTIFY)", None),
                        ("both through nginx (round robin over A and B)", via),
                    ):
                        wk = wake_latency(a, b, dev, sender, 100, via=base)
                        for p, limit in (("p50", 20), ("p99", 100)):
                            row(
                                f"wake latency {p}, {what}, {wk['rounds']} rounds",
                                _n(wk[f"{p}_ms"], " ms"),
                                f"hello round trip {p} {_n(hq[f'{p}_ms'], ' ms')}; the post's "
                                f"own round trip p50 {_n(wk['post_p50_ms'], ' ms')}",
                                wk[f"{p}_ms"] / hq[f"{p}_ms"],
                                f"< {limit} ms",
                                wk[f"{p}_ms"] < limit,
                            )
                finally:
                    ngx.terminate()
                    ngx.wait()
                    a.stop()
                    b.stop()
        hello.terminate()
        hello.wait()
    print_table(table, notes)


if __name__ == "__main__":
    main()
