"""Engine creation and schema migration for the service's database.

SQLite (the default, a file in WAL mode) and PostgreSQL are supported; Alembic
creates and upgrades the schema for both at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

from ..errors import StorageError

__all__ = ["alembic_config", "listen_conninfo", "make_engine", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout, and its write transactions
    (``keystead_write`` execution option) begin with ``BEGIN IMMEDIATE``: SQLite ignores row
    locks, so a writer must hold the write lock before it reads what it will change."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=max_overflow,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we say BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("keystead_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    try:
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=10
        )
    except ModuleNotFoundError as e:
        if "psycopg" in str(e):
            raise StorageError(
                "PostgreSQL support is not installed", hint="pip install 'keystead[postgres]'"
            ) from e
        raise


def listen_conninfo(engine: Engine) -> str | None:
    """A libpq connection string for the notification listener (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
