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

The scenarios themselves are in ``load_scenarios.py``; this file runs them in order and
turns their figures into the table: the rows on SQLite (``sqlite_rows``), then those on
PostgreSQL (``postgres_rows``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import machine  # noqa: E402
from keystead.core.testing import free_port  # noqa: E402
from load_scenarios import (  # noqa: E402
    bare_read_load,
    device_on,
    fill_notes,
    idle_waiters,
    isolation,
    items_path,
    reencrypt_rates,
    wake_latency,
)
from loadgen import NewItems, Plain, Signed, load  # noqa: E402
from servers import DEFAULT_PG, hello_server, nginx_front, prepare_pg, start_service  # noqa: E402


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


@dataclass
class Table:
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(
        self,
        figure: str,
        value: str,
        side: str = "",
        ratio: float | None = None,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        self.rows.append(
            (figure, value, side, "" if ratio is None else f"{ratio:.3g}", target, _met(ok))
        )

    def print(self) -> None:
        print(f"\nService under load  ({machine()})\n")
        head = ("figure", "this run", "side by side", "ratio", "target", "met")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        for note in self.notes:
            print(f"\n- {note}")


# the limits every service of the bench runs with: no per-source or quota limit in the way
BIG = {
    "KEYSTEAD_ACCOUNTS_PER_SOURCE_HOUR": "100000",
    "KEYSTEAD_REENCRYPT_PER_MINUTE": "100000000",
    "KEYSTEAD_QUOTA_ITEMS": "10000000",
    "KEYSTEAD_MAX_WAIT": "600",
}


# ------------------------------------------------------------------ main
def sqlite_rows(
    t: Table, root: Path, hello_port: int, secs: float, waiters: int, want: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of one service process on SQLite, beside the hello at ``hello_port``; the
    hello's figures under load and under a light load, which the later rows are put to."""
    hello_url = f"http://127.0.0.1:{hello_port}"
    svc = start_service(f"sqlite:///{root}/s.sqlite", root / "sqlite", **BIG)
    try:
        reader = device_on(svc, root, "reader")
        fill_notes(reader)
        reads_req = Signed(reader, svc.url, "GET", items_path(reader))
        reads_req.check()
        h = load(hello_port, Plain(hello_url, "/"), rate_guess=6000, seconds=secs)
        hs = f"hello {_n(h['rate'], '/s')}"
        t.row("bare uvicorn hello (32 connections)", _rate(h))
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
        t.row(
            "bare uvicorn hello on h11 (context: the pure-Python parser)",
            _rate(h11r),
            hs,
            h11r["rate"] / h["rate"],
        )
        hs_h11 = f"; hello on h11 {_n(h11r['rate'], '/s')}"
        health = load(svc.port, Plain(svc.url, "/v1/health"), rate_guess=6000, seconds=secs)
        t.row(
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
        t.row(
            "signed read, quiet, 2 connections",
            _rate(quiet),
            hq_side,
            quiet["p99_ms"] / hq["p99_ms"],
        )
        peak = 0.0
        if want("reads"):
            r = load(svc.port, reads_req, rate_guess=1500, seconds=secs)
            peak = max(peak, r["rate"])
            t.row(
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
                mode: bare_read_load(root, reader, mode, secs)
                for mode in ("read", "verify", "open")
            }
            t.row(
                "the same signed read as a bare ASGI app on the service's Store "
                "(no FastAPI, no middleware: bench/bare_read.py)",
                _rate(bare["read"]),
                f"{hs}; the service {_n(r['rate'], '/s')} = "
                f"{r['rate'] / bare['read']['rate']:.2f} of it",
                bare["read"]["rate"] / h["rate"],
            )
            t.row(
                "bound: hello plus one Ed25519 check of the request, on the event loop "
                "(no database, no nonce)",
                _rate(bare["verify"]),
                hs,
                bare["verify"]["rate"] / h["rate"],
            )
            t.row(
                "bound: the read and its JSON with no authentication at all, on the "
                "event loop (no thread pool)",
                _rate(bare["open"]),
                hs,
                bare["open"]["rate"] / h["rate"],
            )
        if want("writes"):
            writer = device_on(svc, root, "writer")
            new_items = Signed(
                writer, svc.url, "POST", items_path(writer), NewItems(writer, "notes")
            )
            new_items.check()
            w = load(svc.port, new_items, rate_guess=800, seconds=secs)
            peak = max(peak, w["rate"])
            t.row(
                "signed single-item writes (new v2 items), 1 process, SQLite",
                _rate(w),
                f"{hs}{hs_h11} (ratio {w['rate'] / h11r['rate']:.3g})",
                w["rate"] / h["rate"],
                "≥ 0.15 × hello",
                w["rate"] / h["rate"] >= 0.15 and not w["errors"],
            )
            two = bare_read_load(root, reader, "verify", secs, checks=2)
            t.row(
                "bound: hello plus two Ed25519 checks (a write's request and item "
                "signatures), on the event loop, no database",
                _rate(two),
                hs,
                two["rate"] / h["rate"],
            )
        if peak:
            t.row(
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
            t.row(
                "re-encryption batch endpoint (10,000 capsules a request: an epoch's "
                "capsule, as devices send it)",
                _n(re["service_per_s"], " capsules/s"),
                raw_side,
                re["ratio"],
                "≥ 0.6 × raw",
                re["ratio"] >= 0.6,
            )
            t.row(
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
            t.row(
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
            wt = idle_waiters(svc, idle, reader, waiters, secs)
            n = wt["waiters"]
            t.row(
                f"idle long polls held by one process (asked {wt['asked']:,})",
                f"{n:,} ({wt['still_waiting']:,} still after the reads)",
                f"established and settled in {wt['established_s']:.0f} s; {wt['failed']} "
                f"connections failed, {wt['answered_early']} answered early",
                n / wt["asked"],
                f"{wt['asked']:,}",
                n >= wt["asked"],
            )
            t.row(
                f"service CPU with {n:,} idle long polls",
                f"{wt['idle_cpu_pct']:.2g} %",
                "",
                None,
                "< 5 % of a core",
                wt["idle_cpu_pct"] < 5,
            )
            errors = f", {wt['read_errors']} ERRORS" if wt["read_errors"] else ""
            t.row(
                f"signed read with {n:,} idle long polls",
                _lat(wt, "read_") + errors,
                f"quiet read p99 {_n(quiet['p99_ms'], ' ms')}; {hq_side}",
                wt["read_p99_ms"] / quiet["p99_ms"],
                "p99 < 50 ms",
                wt["read_p99_ms"] < 50 and not wt["read_errors"],
            )
    finally:
        svc.stop()
    return h, hq


def postgres_rows(
    t: Table, root: Path, url: str, secs: float, want: Any, h: dict[str, Any], hq: dict[str, Any]
) -> None:
    """The rows of several service processes on PostgreSQL at ``url``: reads with one and
    two workers, their keep-alive round trips, and the wake of a waiter across processes."""
    hs = f"hello {_n(h['rate'], '/s')}"
    why = (
        prepare_pg(url) if url and (want("pg") or want("wake")) else "PostgreSQL rows not asked for"
    )
    if why:
        t.notes.append(f"PostgreSQL rows left out: {why}")
        return
    pg_rates: dict[int, float] = {}
    pg_rtt: dict[int, float] = {}
    for workers in (1, 2) if want("pg") else ():
        # reuse_port: the generator's 32 keep-alive connections spread over both
        # workers (on the one shared socket most of them may land on one)
        spread = {"KEYSTEAD_REUSE_PORT": "true"} if workers > 1 else {}
        pg = start_service(url, root / f"pg{workers}", workers=workers, **BIG, **spread)
        try:
            dev = device_on(pg, root / f"pgw{workers}", f"pg{workers}")
            fill_notes(dev)
            req = Signed(dev, pg.url, "GET", items_path(dev))
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
            t.row(
                f"signed reads, PostgreSQL, --workers {workers}"
                + (" (reuse_port)" if workers > 1 else ""),
                _rate(r),
                hs,
                r["rate"] / h["rate"],
            )
        finally:
            pg.stop()
    if len(pg_rtt) == 2:
        t.row(
            "keep-alive /v1/health round trip p50 on one connection, "
            "PostgreSQL, --workers 2 (side: --workers 1)",
            _n(pg_rtt[2], " ms"),
            _n(pg_rtt[1], " ms"),
            pg_rtt[2] / pg_rtt[1],
            "no floor: < 2 × one worker",
            pg_rtt[2] < 2 * pg_rtt[1],
        )
    if len(pg_rates) == 2:
        t.row(
            "PostgreSQL reads, growth from 1 to 2 processes",
            _n(pg_rates[2], "/s"),
            _n(pg_rates[1], "/s"),
            pg_rates[2] / pg_rates[1],
            "> 1",
            pg_rates[2] > pg_rates[1],
        )
    if want("wake"):
        a = start_service(url, root / "wa", **BIG)
        b = start_service(url, root / "wb", **BIG)
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
                    t.row(
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

    t = Table()
    with tempfile.TemporaryDirectory(prefix="keystead-load-") as tmp:
        root = Path(tmp)
        hello_port = free_port()
        hello = hello_server(hello_port, root)
        try:
            h, hq = sqlite_rows(t, root, hello_port, args.seconds, args.waiters, want)
            postgres_rows(t, root, args.pg, args.seconds, want, h, hq)
        finally:
            hello.terminate()
            hello.wait()
    t.print()


if __name__ == "__main__":
    main()
