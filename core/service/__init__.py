"""The Keystead service: FastAPI routes, SQLAlchemy storage, Alembic migrations."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from .app import create_app
from .context import ServiceContext
from .db import make_engine, migrate
from .store import Store

__all__ = ["ServiceContext", "Store", "build_app", "create_app", "default_database_url"]


def default_database_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(os.environ.get("KEYSTEAD_SERVICE_DIR") or user_data_dir("keystead-service"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{folder / 'keystead.sqlite'}"


def build_app(database_url: str) -> FastAPI:
    """Migrate the database, then build the app with every installed adapter's routes."""
    from ..adapter import discover

    engine = make_engine(database_url)
    migrate(engine)
    ctx = ServiceContext(Store(engine))
    routers = [r for a in discover().values() if (r := a.router(ctx)) is not None]
    return create_app(ctx, routers)


def app_from_env() -> FastAPI:
    return build_app(os.environ["KEYSTEAD_DATABASE_URL"])
