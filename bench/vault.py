"""Password vault benchmarks, all through the real CLI (process start included).

1. ``keystead passwords import`` of 10,000 entries (Chrome CSV).
2. ``keystead passwords get`` wall time, median of 20, side by side with Debian's
   ``pass show`` (gpg with a passphrase-less key and its agent) timed the same way.
   Targets: under 150 ms, and no slower than ``pass show``.
3. A new device's first ``keystead passwords sync`` of those 10,000 entries (fetch,
   decrypt, index). Target: under 3 s.

Python processes run with a bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary
folder, warmed once), as an installed package would; ``PYTHONDONTWRITEBYTECODE=1``
would make every run compile Keystead again.

    python bench/vault.py [--entries 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import PASSPHRASE, join, median, new_account, report, service  # noqa: E402
from keystead.core.device import Device  # noqa: E402

CLI = [sys.executable, "-m", "keystead.core.cli"]


def env_for(home: Path, pycache: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KEYSTEAD_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        KEYSTEAD_HOME=str(home), KEYSTEAD_PASSPHRASE=PASSPHRASE, PYTHONPYCACHEPREFIX=str(pycache)
    )
    return env


def wall(cmd: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, bytes]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.decode()}")
    return elapsed, proc.stdout


def chrome_csv(n: int) -> bytes:
    rows = ["name,url,username,password,note"]
    rows += [
        f"site{i},https://s{i}.example{i % 97}.test/login,user{i},pw-{i:06d}-x," for i in range(n)
    ]
    return ("\n".join(rows) + "\n").encode()


def pass_store(root: Path) -> dict[str, str]:
    """A throwaway GNUPGHOME with a passphrase-less key and a password store of one entry."""
    gnupg, store = root / "gnupg", root / "store"
    gnupg.mkdir(mode=0o700, parents=True)
    env = dict(os.environ, GNUPGHOME=str(gnupg), PASSWORD_STORE_DIR=str(store))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "bench@keystead.invalid",
            "default",
            "default",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["pass", "init", "bench@keystead.invalid"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        ["pass", "insert", "-e", "web/s42.example42.test"],
        env=env,
        check=True,
        input=b"pw-000042-x\n",
        capture_output=True,
    )
    return env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    rows = []
    with service(args.database_url) as svc, tempfile.TemporaryDirectory() as tmp:
        root, pycache = Path(tmp), Path(tmp) / "pycache"
        admin = new_account(svc, root, "vault", ("passwords",))
        admin_env = env_for(admin.home.path, pycache)
        admin.close()
        wall([*CLI, "passwords", "generate"], admin_env)  # warm the bytecode cache

        # 1. import
        csv = root / "import.csv"
        csv.write_bytes(chrome_csv(args.entries))
        t, _ = wall([*CLI, "passwords", "import", str(csv), "--format", "chrome"], admin_env)
        rows.append(
            {
                "benchmark": f"import {args.entries:,} entries (CLI)",
                "seconds": t,
                "target": "-",
                "met": "-",
            }
        )

        # 2. get vs pass show
        url = "https://s42.example42.test/login"
        wall([*CLI, "passwords", "get", url], admin_env)  # warm: index, page cache
        gets = []
        for _ in range(args.runs):
            t, out = wall([*CLI, "passwords", "get", url], admin_env)
            assert out == b"pw-000042-x\n", out
            gets.append(t)
        pass_env = pass_store(root / "pass")
        try:
            wall(["pass", "show", "web/s42.example42.test"], pass_env)  # start the agent
            shows = []
            for _ in range(args.runs):
                t, out = wall(["pass", "show", "web/s42.example42.test"], pass_env)
                assert out == b"pw-000042-x\n", out
                shows.append(t)
        finally:
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, capture_output=True)
        g, s = median(gets), median(shows)
        rows.append(
            {
                "benchmark": f"get, median of {args.runs} (process start incl.)",
                "seconds": g,
                "target": "< 0.150 s",
                "met": "yes" if g < 0.150 else "NO",
            }
        )
        rows.append(
            {
                "benchmark": f"pass show, median of {args.runs}",
                "seconds": s,
                "target": "-",
                "met": "-",
            }
        )
        rows.append(
            {
                "benchmark": "get / pass show (ratio)",
                "seconds": g / s,
                "target": "<= 1",
                "met": "yes" if g <= s else "NO",
            }
        )
        floor = median(
            [
                wall([sys.executable, "-c", "import keystead.core.cli"], admin_env)[0]
                for _ in range(args.runs)
            ]
        )
        rows.append(
            {
                "benchmark": "  of which: python + 'import keystead.core.cli'",
                "seconds": floor,
                "target": "-",
                "met": "-",
            }
        )

        # 3. first sync on a new device
        with Device.open(admin.home, PASSPHRASE) as again:
            member = join(again, root, "new-device")
        member_env = env_for(member.home.path, pycache)
        member.close()
        t, _ = wall([*CLI, "passwords", "sync"], member_env)
        rows.append(
            {
                "benchmark": f"first sync of {args.entries:,} on a new device (CLI)",
                "seconds": t,
                "target": "< 3 s",
                "met": "yes" if t < 3 else "NO",
            }
        )
        t, out = wall([*CLI, "passwords", "get", url], member_env)
        assert out == b"pw-000042-x\n"
        rows.append({"benchmark": "  then its first get", "seconds": t, "target": "-", "met": "-"})
        shutil.rmtree(pycache, ignore_errors=True)
    report("passwords vault", rows, Path(__file__).parent / "results" / "vault.json")


if __name__ == "__main__":
    main()
