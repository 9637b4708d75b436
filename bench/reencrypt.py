"""Re-encryptions per second through the service's batch endpoint vs raw umbral_pre.reencrypt.

Target (issue 2): at least 0.6 of raw, same run, same cores.
    python bench/reencrypt.py [--batch 1000] [--batches 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import umbral_pre

sys.path.insert(0, str(Path(__file__).parent))
from _harness import join, new_account, report, service  # noqa: E402


def raw_rate(n: int) -> float:
    alice, bob, signer = (umbral_pre.SecretKey.random() for _ in range(3))
    kfrag = umbral_pre.generate_kfrags(
        delegating_sk=alice, receiving_pk=bob.public_key(), signer=umbral_pre.Signer(signer),
        threshold=1, shares=1, sign_delegating_key=True, sign_receiving_key=True)[0]
    capsules = [umbral_pre.encrypt(alice.public_key(), b"k" * 32)[0] for _ in range(n)]
    t = time.perf_counter()
    for c in capsules:
        umbral_pre.reencrypt(c, kfrag)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    from keystead.core import _umbral

    with service(args.database_url) as svc, tempfile.TemporaryDirectory() as tmp:
        admin = new_account(svc, Path(tmp), "bench", ("bench",))
        member = join(admin, Path(tmp), "member")
        pk = member.chain().collection("bench").public_key
        capsules = [_umbral.encrypt(pk, b"k" * 32)[0] for _ in range(args.batch)]
        reqs = [("bench", c) for c in capsules]
        member.reencrypt(member.account, reqs[:10])  # warm up the connection and caches
        total = args.batch * args.batches
        raw_before = raw_rate(args.batch)
        t = time.perf_counter()
        for _ in range(args.batches):
            out = member.reencrypt(member.account, reqs)
            assert len(out) == args.batch
        service_rate = total / (time.perf_counter() - t)
        raw = (raw_before + raw_rate(args.batch)) / 2
    ratio = service_rate / raw
    report("re-encryption throughput", [
        {"path": "raw umbral_pre.reencrypt", "per_second": raw, "ratio": 1.0},
        {"path": f"service batch endpoint ({args.batch}/request)", "per_second": service_rate,
         "ratio": ratio},
    ], Path(__file__).parent / "results" / "reencrypt.json")
    print(f"target >= 0.6 of raw: {'met' if ratio >= 0.6 else 'NOT met'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
