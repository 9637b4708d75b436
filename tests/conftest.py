"""Shared test helpers: a real service process on loopback and real CLI runs per device home.

Several ``KEYSTEAD_HOME`` folders are several devices. Set
``KEYSTEAD_TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
to run the service-backed tests against that database instead of a SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from keystead.core.testing import DeviceHome as Home
from keystead.core.testing import ServiceProcess as Service
from keystead.core.testing import database_url, unique

# Keystores made in-process by the unit tests use the lowest cost the keystore accepts
# (2^14); the CLI's get the same through DeviceHome.env.
os.environ.setdefault("KEYSTEAD_SCRYPT_N", str(2**14))


# Timing is the benchmarks' business: a property test's example may take long on a busy
# machine (the suite runs in parallel) without being wrong.
settings.register_profile("keystead", deadline=None)
settings.load_profile("keystead")


@pytest.fixture(scope="session", autouse=True)
def _fresh_postgres(worker_id: str) -> None:
    """Against PostgreSQL, start each session on an empty schema; a parallel run's workers
    (pytest-xdist) each get a database of their own next to the one named."""
    url = os.environ.get("KEYSTEAD_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, make_url, text

    if worker_id != "master":
        base = make_url(url)
        name = f"{base.database}_{worker_id}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
        os.environ["KEYSTEAD_TEST_DATABASE_URL"] = url
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service process per test module (tests use unique account names)."""
    work = tmp_path_factory.mktemp("service")
    svc = Service(database_url(work), work)
    svc.start()
    yield svc
    svc.stop()


@dataclass
class Account:
    name: str
    service: Service
    admin: Home
    recovery_key: str
    tmp: Path

    def join(
        self, device: str, *, role: str = "member", scopes: Sequence[str] | None = None
    ) -> Home:
        """Join a new device through the real pairing flow, approved by the admin."""
        home = Home(self.tmp / device)
        proc = home.spawn(
            "device",
            "join",
            self.name,
            "--server",
            self.service.url,
            "--device",
            device,
            "--wait",
            "60",
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("pairing code: "), line + (proc.stderr.read() if proc.stderr else "")
        code = line.split(": ", 1)[1].strip()
        args = ["device", "approve", code, "--role", role, "--yes"]
        if scopes is not None:
            args += ["--scopes", ",".join(scopes)]
        self.admin.run(*args)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "approved" in out
        return home


@pytest.fixture
def make_account(service: Service, tmp_path: Path) -> Any:
    """Create accounts with the real CLI: ``make_account()`` -> Account."""

    def make(prefix: str = "acct", device: str = "laptop") -> Account:
        name = unique(prefix)
        admin = Home(tmp_path / f"{name}-{device}")
        out = admin.run(
            "account", "create", name, "--server", service.url, "--device", device
        ).stdout
        key = out.strip().split("recovery key: ", 1)[1]
        return Account(name, service, admin, key, tmp_path)

    return make
