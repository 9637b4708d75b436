"""The Keystead service: FastAPI routes, SQLAlchemy storage, Alembic migrations."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from .app import create_app
from .context import ServiceContext
from .db import make_engine, migrate
from .store import Store

__all__ = [
    "ServiceContext", "Store", "app_for", "build_app", "create_app", "default_database_url",
    "open_context",
]


def default_database_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(os.environ.get("KEYSTEAD_SERVICE_DIR") or user_data_dir("keystead-service"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{folder / 'keystead.sqlite'}"


def open_context(database_url: str) -> ServiceContext:
    """Connect to the database and bring its schema up to date."""
    engine = make_engine(database_url)
    migrate(engine)
    return ServiceContext(Store(engine))


def app_for(ctx: ServiceContext) -> FastAPI:
    """The app with every installed adapter's routes."""
    from ..adapter import HasCapabilityRoutes, HasRouter, channel_policies, discover
    from ..capabilities import ServiceCapabilities

    adapters = discover()
    routers = []
    for a in adapters.values():
        if isinstance(a, HasCapabilityRoutes):
            r = a.routes(ServiceCapabilities(ctx, a))
        elif isinstance(a, HasRouter):
            r = a.router(ctx)
        else:
            r = None
        if r is not None:
            routers.append(r)
    return create_app(ctx, routers, channels=channel_policies(adapters))


def build_app(database_url: str) -> FastAPI:
    return app_for(open_context(database_url))


def app_from_env() -> FastAPI:
    return build_app(os.environ["KEYSTEAD_DATABASE_URL"])
