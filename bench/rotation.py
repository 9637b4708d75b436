"""Revocation benchmarks (issue 10), against a real service process.

1. Removing a device from an account with 10 collections and 5 devices, at 1k, 10k and 100k
   items per collection. Target: under 1 s wall, and flat in the number of items (a removal
   re-keys epochs and grants, never items).
2. A new device joining after 100 rotations reads the whole history of 10,000 items (spread
   over the 100 epochs). Target: under 2 s.
3. Syncing one changed item among 100,000 stays under 50 ms: see bench/sync.py.

    python bench/rotation.py [--sizes 1000,10000,100000] [--rotations 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KEYSTEAD_SCRYPT_N", str(2**14))  # homes are made by the hundred here
# 10 collections of 100,000 items is one account of a million: above the default quota.
os.environ.setdefault("KEYSTEAD_QUOTA_ITEMS", str(2_000_000))
os.environ.setdefault("KEYSTEAD_QUOTA_ITEM_BYTES", str(4 * 1024**3))
sys.path.insert(0, str(Path(__file__).parent))
from _harness import join, new_account, report, service  # noqa: E402
from keystead.core.account import remove_device  # noqa: E402
from keystead.core.collections import Collection  # noqa: E402

COLLECTIONS = tuple(f"c{i}" for i in range(10))


def removal(svc: object, root: Path, size: int) -> float:
    admin = new_account(svc, root, f"rm{size}", COLLECTIONS)  # type: ignore[arg-type]
    body = os.urandom(200)
    for name in COLLECTIONS:
        Collection(admin, name).put_many(((f"i{j:06d}", body) for j in range(size)), batch=5000)
    for k in range(3):
        join(admin, root, f"member{k}")
    join(admin, root, "tablet", role="admin")  # 5 devices with the admin
    t = time.perf_counter()
    remove_device(admin, "member0")
    return time.perf_counter() - t


def history(svc: object, root: Path, rotations: int, items: int) -> tuple[float, int]:
    admin = new_account(svc, root, "hist", ("notes",))  # type: ignore[arg-type]
    coll = Collection(admin, "notes")
    per = items // rotations
    body = os.urandom(200)
    for r in range(rotations):
        coll.put_many((f"e{r:03d}-{j:05d}", body) for j in range(per))
        join(admin, root, f"gone{r}")
        remove_device(admin, f"gone{r}")
    reader = join(admin, root, "new-device")
    t = time.perf_counter()
    rcoll = Collection(reader, "notes")
    rcoll.sync()
    records = rcoll.records()
    took = time.perf_counter() - t
    epochs = admin.chain().collection("notes").current_epoch
    assert len(records) == per * rotations, len(records)
    return took, epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--rotations", type=int, default=100)
    ap.add_argument("--history-items", type=int, default=10_000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    rows = []
    with service(args.database_url) as svc, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size in [int(s) for s in args.sizes.split(",")]:
            took = removal(svc, root, size)
            rows.append(
                {
                    "benchmark": f"remove a device: 10 collections x {size:,} items, 5 devices",
                    "seconds": took,
                    "target": "< 1 s, flat",
                    "met": "yes" if took < 1 else "NO",
                }
            )
        took, epochs = history(svc, root, args.rotations, args.history_items)
        rows.append(
            {
                "benchmark": f"new device reads {args.history_items:,} items over "
                f"{epochs} epochs ({args.rotations} rotations)",
                "seconds": took,
                "target": "< 2 s",
                "met": "yes" if took < 2 else "NO",
            }
        )
    report("rotation", rows, Path(__file__).parent / "results" / "rotation.json")


if __name__ == "__main__":
    main()
