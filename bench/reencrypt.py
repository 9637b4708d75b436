"""Re-encryptions per second through the service's batch endpoint vs raw umbral_pre.reencrypt.

Target (issue 2): at least 0.6 of raw, same run, same cores.
    python bench/reencrypt.py [--batch 1000] [--batches 5]

Rows: raw ``reencrypt`` on parsed objects (the target's reference); raw including what any
service must do with bytes on the wire (parse the capsule, serialize the cfrag); the service
with one worker process; the service with one worker per core and as many client threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import umbral_pre

sys.path.insert(0, str(Path(__file__).parent))
from _harness import join, new_account, report, service  # noqa: E402


def raw_rates(n: int) -> tuple[float, float]:
    """(reencrypt alone, parse + reencrypt + serialize) per second."""
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
    capsules = [umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(n)]
    wire = [bytes(c) for c in capsules]
    t = time.perf_counter()
    for c in capsules:
        umbral_pre.reencrypt(c, kfrag)
    alone = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for raw in wire:
        bytes(umbral_pre.reencrypt(umbral_pre.Capsule.from_bytes(raw), kfrag))
    with_wire = n / (time.perf_counter() - t)
    return alone, with_wire


def service_rate(workers: int, batch: int, batches: int, db: str | None) -> float:
    with service(db, workers=workers) as svc, tempfile.TemporaryDirectory() as tmp:
        admin = new_account(svc, Path(tmp), "bench", ("bench",))
        members = [join(admin, Path(tmp), f"member{i}") for i in range(workers)]
        from keystead.core import _umbral

        pk = members[0].chain().collection("bench").public_key
        reqs = [("bench", _umbral.encrypt(pk, b"k" * 32)[0]) for _ in range(batch)]
        for m in members:
            m.reencrypt(m.account, reqs[:10])  # warm up connections and caches

        def work(m: object) -> None:
            for _ in range(batches):
                assert len(m.reencrypt(m.account, reqs)) == batch  # type: ignore[attr-defined]

        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, members))
        return workers * batch * batches / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    raw1 = raw_rates(args.batch)
    one = service_rate(1, args.batch, args.batches, args.database_url)
    many = service_rate(cores, args.batch, args.batches, args.database_url)
    raw2 = raw_rates(args.batch)
    alone, with_wire = (raw1[0] + raw2[0]) / 2, (raw1[1] + raw2[1]) / 2
    report(
        "re-encryption throughput",
        [
            {"path": "raw umbral_pre.reencrypt (1 core)", "per_second": alone, "ratio": 1.0},
            {
                "path": "raw incl. capsule parse + cfrag bytes (1 core)",
                "per_second": with_wire,
                "ratio": with_wire / alone,
            },
            {
                "path": f"service, 1 worker, {args.batch}/request",
                "per_second": one,
                "ratio": one / alone,
            },
            {
                "path": f"service, {cores} workers, {cores} clients",
                "per_second": many,
                "ratio": many / alone,
            },
        ],
        Path(__file__).parent / "results" / "reencrypt.json",
    )
    print(
        f"target >= 0.6 of raw: 1 worker {one / alone:.2f}, {cores} workers "
        f"{many / alone:.2f}; the wire floor (parsing capsules) is {with_wire / alone:.2f}"
    )


if __name__ == "__main__":
    main()
