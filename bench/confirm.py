"""Confirmation round trip: RP request -> sealed prompt in the spool -> device opens, signs,
answers -> RP verifies against a freshly fetched chain. No human: an approving device runs in a
thread on the Python API, waiting on the spool long-poll.

    python bench/confirm.py [--prompts 200] [--member]

Reports p50/p99 of the RP-side round trip (start() to a verified Outcome) and prompts per
second through one service (sequential RP, so this is per-RP throughput, not a saturation test).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from _harness import join, new_account, pct, report, service
from keystead.adapters.second_factor import DevicePromptSource, RelyingPartyClient
from keystead.adapters.second_factor._wire import new_rp_token, token_hash
from keystead.core.client import path


def approver(device, stop: threading.Event) -> None:
    src = DevicePromptSource(device)
    while not stop.is_set():
        for r in src.wait_new(1):
            src.approve(r.prompt.request_id, r.prompt.number)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "confirm.json")
    args = ap.parse_args()
    rows = []
    with service() as svc, tempfile.TemporaryDirectory() as tmp:
        admin = new_account(svc, Path(tmp), "bench", ("confirm", "totp"))
        token = new_rp_token("bank.example")
        admin.client.put(
            path("confirm", "bench", "rps", "bank.example"), {"token_sha256": token_hash(token)}
        )
        for role in ("member", "admin"):
            phone = join(admin, Path(tmp), f"phone-{role}", role=role)
            stop = threading.Event()
            t = threading.Thread(target=approver, args=(phone, stop), daemon=True)
            t.start()
            times: list[float] = []
            with RelyingPartyClient(svc.url, "bench", token, pins=Path(tmp) / "rp-pins") as rp:
                for i in range(args.warmup + args.prompts):
                    t0 = time.perf_counter()
                    outcome = rp.request(f"Log in #{i}?", lifetime=60, number_matching=True)
                    elapsed = time.perf_counter() - t0
                    assert outcome.approved, outcome
                    if i >= args.warmup:
                        times.append(elapsed)
            stop.set()
            t.join(5)
            phone.close()
            total = sum(times)
            rows.append(
                {
                    "answering device": role,
                    "prompts": len(times),
                    "p50 ms": pct(times, 50) * 1000,
                    "p99 ms": pct(times, 99) * 1000,
                    "prompts/s": len(times) / total,
                }
            )
        admin.close()
    report("confirm round trip (RP request -> verified approval), loopback, SQLite", rows, args.out)


if __name__ == "__main__":
    main()
