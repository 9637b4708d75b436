"""Sync benchmarks (issue 2).

1. A new device's first sync of a 10,000-item collection, including decrypting every item.
   Target: under 3 s.
2. Syncing one changed item in collections of 1k, 10k and 100k items. Target: under 50 ms,
   and flat in the collection size.
    python bench/sync.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import join, median, new_account, report, service  # noqa: E402
from keystead.core.collections import Collection  # noqa: E402


def fill(coll: Collection, n: int) -> None:
    body = os.urandom(200)
    coll.put_many((f"item-{i:06d}", body) for i in range(n))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, default=10_000)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    rows = []
    with service(args.database_url) as svc, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # 1. first sync of a new device
        admin = new_account(svc, root, "first", ("notes",))
        fill(Collection(admin, "notes"), args.first)
        member = join(admin, root, "new-device")
        t = time.perf_counter()
        coll = Collection(member, "notes")
        fetched = coll.sync().fetched
        records = coll.records()
        first = time.perf_counter() - t
        assert fetched == args.first and len(records) == args.first
        rows.append(
            {
                "benchmark": f"first sync + decrypt, {args.first:,} items",
                "seconds": first,
                "target": "< 3 s",
                "met": "yes" if first < 3 else "NO",
            }
        )
        # 2. one changed item in collections of growing size
        for size in [int(s) for s in args.sizes.split(",")]:
            admin = new_account(svc, root, f"size{size}", ("notes",))
            fill(Collection(admin, "notes"), size)
            reader = join(admin, root, "reader")
            rcoll = Collection(reader, "notes")
            rcoll.sync()
            times = []
            wcoll = Collection(admin, "notes")
            wcoll.sync()
            for i in range(20):
                wcoll.put(f"item-{i:06d}", b"changed %d" % i)
                t = time.perf_counter()
                got = rcoll.sync().fetched
                rec = rcoll.get(f"item-{i:06d}")
                times.append(time.perf_counter() - t)
                assert got == 1 and rec is not None and rec.plaintext == b"changed %d" % i
            ms = median(times) * 1000
            rows.append(
                {
                    "benchmark": f"sync one changed item of {size:,}",
                    "seconds": ms / 1000,
                    "target": "< 0.050 s",
                    "met": "yes" if ms < 50 else "NO",
                }
            )
    report("sync", rows, Path(__file__).parent / "results" / "sync.json")


if __name__ == "__main__":
    main()
