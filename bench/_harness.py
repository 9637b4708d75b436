"""Shared benchmark plumbing: a real service process and devices in temporary homes."""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keystead.core.account import (
    approve_device,
    create_account,
    pairing_details,
    start_join,
    wait_for_approval,
)
from keystead.core.device import Device
from keystead.core.home import Home
from keystead.core.testing import ServiceProcess

PASSPHRASE = "bench passphrase"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


@contextmanager
def service(database_url: str | None = None, workers: int = 1) -> Iterator[ServiceProcess]:
    with tempfile.TemporaryDirectory(prefix="keystead-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/service.sqlite"
        with ServiceProcess(url, Path(tmp), workers=workers) as svc:
            yield svc


def new_account(svc: ServiceProcess, root: Path, name: str, collections: tuple[str, ...]) -> Device:
    dev, _ = create_account(
        Home(root / name / "admin"), svc.url, name, "admin", PASSPHRASE, collections=collections
    )
    return dev


def join(admin: Device, root: Path, device_name: str, role: str = "member") -> Device:
    home = Home(root / admin.account / device_name)
    ticket = start_join(home, admin.server, admin.account, device_name, PASSPHRASE)
    approve_device(admin, pairing_details(admin, ticket.code), role)
    dev = wait_for_approval(home, PASSPHRASE, 30)
    assert dev is not None
    return dev


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[dict[str, Any]], out: Path | None = None) -> None:
    print(f"\n{title}  ({machine()})")
    if rows:
        keys = list(rows[0])
        widths = [max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys]
        print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
        for r in rows:
            print("  ".join(_fmt(r[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 100 else f"{v:,.0f}"
    return str(v)
