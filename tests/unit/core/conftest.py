"""Fixtures for the core's unit tests: a store on SQLite and PostgreSQL, an in-process service."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_harness import Clock, InProcessService
from keystead.core.collections import Collection
from keystead.core.device import Device
from keystead.core.service import Store
from keystead.core.service.db import make_engine, migrate
from store_accounts import Acct, make


def _database_urls() -> list[Any]:
    pg = os.environ.get("KEYSTEAD_TEST_DATABASE_URL", "")
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            pg,
            id="postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not pg.startswith("postgresql"),
                    reason="KEYSTEAD_TEST_DATABASE_URL is not a PostgreSQL URL",
                ),
            ],
        ),
    ]


@pytest.fixture(params=_database_urls())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return os.environ["KEYSTEAD_TEST_DATABASE_URL"]  # read now: a parallel worker's own


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[InProcessService]:
    """The in-process service on SQLite (storage on both databases is test_store's job)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'service.sqlite'}")
    migrate(engine)
    yield InProcessService(Store(engine), clock, tmp_path)
    engine.dispose()


@pytest.fixture
def alice(svc: InProcessService) -> Device:
    dev, _ = svc.create()
    Collection(dev, "notes").put("first", b"one")
    return dev


@pytest.fixture
def a(store: Store) -> Acct:
    """An account made directly in the store (store_accounts.make)."""
    return make(store)
