"""The Keystead service: FastAPI routes, SQLAlchemy storage, Alembic migrations."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from .app import create_app
from .config import ServiceConfig
from .context import ServiceContext
from .db import make_engine, migrate
from .store import Store

__all__ = [
    "ServiceConfig",
    "ServiceContext",
    "Store",
    "app_for",
    "build_app",
    "create_app",
    "default_database_url",
    "make_context",
    "open_context",
    "service_dir",
]


def service_dir() -> Path:
    """The service's data folder: ``KEYSTEAD_SERVICE_DIR``, else the platform's."""
    from platformdirs import user_data_dir

    folder = Path(os.environ.get("KEYSTEAD_SERVICE_DIR") or user_data_dir("keystead-service"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def default_database_url() -> str:
    return f"sqlite:///{service_dir() / 'keystead.sqlite'}"


def open_context(database_url: str) -> ServiceContext:
    """Connect to the database and bring its schema up to date."""
    return make_context(database_url, ServiceConfig())


def make_context(
    database_url: str, config: ServiceConfig, *, migrate_schema: bool = True
) -> ServiceContext:
    """A context on ``database_url`` with ``config``'s pools and limits."""
    engine = make_engine(
        database_url, pool_size=config.db_pool_size, max_overflow=config.db_pool_overflow
    )
    if migrate_schema:
        migrate(engine)
    return ServiceContext(Store(engine, config), max_skew=config.max_skew, config=config)


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
    """For ``uvicorn --factory keystead.core.service:app_from_env`` (schema migrated already)."""
    ctx = make_context(
        os.environ["KEYSTEAD_DATABASE_URL"], ServiceConfig.load(), migrate_schema=False
    )
    return app_for(ctx)
