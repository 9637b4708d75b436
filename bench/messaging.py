"""Benchmark messaging through the library path against a real service process.

- inbox: a device that joined after 1,000 messages arrived reads them all: spool fetch,
  one chain fetch per sender, 1,000 signature checks, ONE re-encryption batch, 1,000 AEAD
  opens, and the encrypted local store. Target: under 2 s. Run twice: with the default
  per-session message key (one capsule per sender and recipient epoch, so the batch holds one
  capsule) and with a capsule per message (the batch holds 1,000; each costs a service
  re-encryption plus a cfrag check and a decryption on the device, about 4 ms of CPU).
- group: adding 100 member accounts to a group (one grant each), then sending one group
  message to them (encrypted once, 101 signed envelopes, one delivery request), and one
  member reading it.

    python bench/messaging.py [--messages 1000] [--members 100] [--out bench/results/messaging.json]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _harness import join, new_account, report, service  # noqa: E402
from keystead.adapters.messaging._inbox import fetch_new  # noqa: E402
from keystead.adapters.messaging._peers import Peers  # noqa: E402
from keystead.adapters.messaging._send import (  # noqa: E402
    add_member,
    create_group,
    send_direct,
    send_group,
)
from keystead.adapters.messaging._store import MessageStore  # noqa: E402

TARGET_INBOX_S = 2.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _clock(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), _cpu()
    value = fn()
    return value, time.perf_counter() - wall, _cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with service() as svc, tempfile.TemporaryDirectory(prefix="keystead-msg-") as tmp:
        root = Path(tmp)
        alice = new_account(svc, root, "alice", ("messages",))
        peers = Peers(alice)
        for recipient, session, how in (
            ("bob", True, "per-session message key (default)"),
            ("erin", False, "a capsule per message"),
        ):
            admin = new_account(svc, root, recipient, ("messages",))
            _, wall, cpu = _clock(
                lambda r=recipient, s=session: [  # type: ignore[misc]
                    send_direct(alice, r, f"message {i}", peers=peers, session=s)
                    for i in range(args.messages)
                ]
            )
            rows.append(
                {
                    "what": f"send {args.messages} direct, {how}",
                    "seconds": wall,
                    "cpu_s": cpu,
                    "per_second": args.messages / wall,
                }
            )
            reader = join(admin, root, "reader")
            store = MessageStore(reader)
            got, wall, cpu = _clock(lambda d=reader, st=store: fetch_new(d, st))  # type: ignore[misc]
            ok = sum(m.verified for m in got)
            if ok != args.messages:
                raise SystemExit(f"only {ok} of {args.messages} messages verified")
            rows.append(
                {
                    "what": f"new device reads an inbox of {args.messages}, {how}",
                    "seconds": wall,
                    "cpu_s": cpu,
                    "per_second": args.messages / wall,
                }
            )
            _, wall, cpu = _clock(lambda st=store: list(st.all()))  # type: ignore[misc]
            rows.append(
                {
                    "what": f"list {args.messages} from the local store",
                    "seconds": wall,
                    "cpu_s": cpu,
                    "per_second": args.messages / wall,
                }
            )
            store.close()

        carol = new_account(svc, root, "carol", ("messages",))
        members = [new_account(svc, root, f"m{i:03d}", ("messages",)) for i in range(args.members)]
        create_group(carol, "all")
        _, wall, cpu = _clock(lambda: [add_member(carol, "all", m.account) for m in members])
        rows.append(
            {
                "what": f"add {args.members} members to a group",
                "seconds": wall,
                "cpu_s": cpu,
                "per_second": args.members / wall,
            }
        )
        sent, wall, cpu = _clock(lambda: send_group(carol, "all", "hello, everyone"))
        rows.append(
            {
                "what": f"send one group message to {len(sent.recipients)} accounts",
                "seconds": wall,
                "cpu_s": cpu,
                "per_second": len(sent.recipients) / wall,
            }
        )
        mstore = MessageStore(members[-1])
        got, wall, cpu = _clock(lambda: fetch_new(members[-1], mstore))
        if [m.verified for m in got] != [True]:
            raise SystemExit(f"the member did not read the group message: {got}")
        rows.append(
            {
                "what": "a member reads it (cross-account re-encryption)",
                "seconds": wall,
                "cpu_s": cpu,
                "per_second": 1 / wall,
            }
        )
        mstore.close()
    report("messaging", rows, args.out)
    for row in (rows[1], rows[4]):
        verdict = "meets" if row["seconds"] < TARGET_INBOX_S else "MISSES"
        print(f"{row['what']}: {row['seconds']:.2f} s, {verdict} the {TARGET_INBOX_S} s target")


if __name__ == "__main__":
    main()
