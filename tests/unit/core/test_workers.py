"""The CPU pool's worker processes do not outlive the service that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STARTER = """
import multiprocessing, sys
from keystead.core.service.workers import CpuPool
pool = CpuPool(2)
pool.start()
print(" ".join(str(c.pid) for c in multiprocessing.active_children()), flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_exit_when_their_service_is_killed() -> None:
    """SIGKILL runs no shutdown: the workers notice their parent is gone and exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    try:
        assert len(pids) >= 2 and all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "pool workers outlived their service"
    finally:
        proc.kill()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        proc.stdin.close()  # type: ignore[union-attr]
        proc.stdout.close()
        proc.wait()
