"""Helpers for tests and benchmarks: run a real ``keystead serve`` process on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLI",
    "PASSPHRASE",
    "DeviceHome",
    "ServiceProcess",
    "database_url",
    "free_port",
    "unique",
]

CLI = [sys.executable, "-m", "keystead.core.launch"]  # what the `keystead` script runs
PASSPHRASE = "correct horse battery staple"


def unique(prefix: str) -> str:
    """A fresh account or device name: tests share one service."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def database_url(tmp: Path) -> str:
    """``KEYSTEAD_TEST_DATABASE_URL`` (PostgreSQL in CI's second step), else SQLite in ``tmp``."""
    return os.environ.get("KEYSTEAD_TEST_DATABASE_URL") or f"sqlite:///{tmp / 'service.sqlite'}"


_TEST_LIMITS = {
    # every test account comes from 127.0.0.1: the per-source limits would stop a suite
    "KEYSTEAD_ACCOUNTS_PER_SOURCE_HOUR": "1000000",
    "KEYSTEAD_PAIRINGS_PER_SOURCE_HOUR": "1000000",
    "KEYSTEAD_ACCESS_LOG": "false",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """A ``keystead serve`` process; stop() and start() it again to test outages."""

    database_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """More environment (``KEYSTEAD_*`` configuration) for the service."""
    args: tuple[str, ...] = ()
    """More ``keystead serve`` options (``--tls-cert``...)."""
    verify: Any = True
    """What httpx verifies the health check's TLS with (a CA file, for ``https``)."""

    @property
    def tls(self) -> bool:
        return any(a.startswith("--tls") for a in self.args)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        import httpx

        with open(self.workdir / "service.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "keystead.core.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.database_url,
                    "--workers",
                    str(self.workers),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_TEST_LIMITS, **os.environ, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "service.log").read_text())
            try:
                health = httpx.get(self.url + "/v1/health", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"service did not start in {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class DeviceHome:
    """One device: a KEYSTEAD_HOME folder and a way to run the real CLI in it."""

    path: Path
    passphrase: str = PASSPHRASE

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
        env.update(
            {
                "KEYSTEAD_HOME": str(self.path),
                "KEYSTEAD_PASSPHRASE": self.passphrase,
                "KEYSTEAD_SCRYPT_N": str(2**14),
                **extra,
            }
        )
        return env

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env(),
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"keystead {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )
