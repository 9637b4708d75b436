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
from keystead.core.testing import DeviceHome as Home
from keystead.core.testing import ServiceProcess as Service
from keystead.core.testing import database_url, unique

# Keystores made in-process by the unit tests use the lowest cost the keystore accepts
# (2^14); the CLI's get the same through DeviceHome.env.
os.environ.setdefault("KEYSTEAD_SCRYPT_N", str(2**14))


@pytest.fixture(scope="session", autouse=True)
def _fresh_postgres() -> None:
    """Against PostgreSQL, start each session on an empty schema."""
    url = os.environ.get("KEYSTEAD_TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

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
