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
from sqlalchemy.exc import DBAPIError

from ..errors import StorageError

__all__ = [
    "ONE_READ",
    "Prepared",
    "driver_error",
    "alembic_config",
    "listen_conninfo",
    "make_engine",
    "migrate",
]

ONE_READ = {"keystead_one_read": True}
"""Execution options of a connection that runs one SELECT (SQLite: no BEGIN around it)."""

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
            # WAL with synchronous=NORMAL: a commit is durable against a crash of the
            # process (what the service promises for an acknowledged write), fsynced at
            # checkpoints; the page cache and memory-mapped reads keep hot rows off read().
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-32000")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.execute("PRAGMA temp_store=MEMORY")
            # No checkpoint inside a commit (it would fsync while the writer holds the write
            # lock: every writer stalled behind it); the store checkpoints after its writes,
            # outside the lock (StoreBase._checkpoint).
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get("keystead_one_read"):
                return  # one SELECT is consistent by itself: no transaction around it
            # straight to the driver: SQLAlchemy's own statement path costs more than BEGIN
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if options.get("keystead_write") else "BEGIN"
            )

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


class Prepared:
    """A Core statement compiled once for an engine's dialect and run on the driver's own
    cursor: for the few statements every request runs (the device row, the changes read,
    the nonces), SQLAlchemy's per-execution work cost more than SQLite's."""

    def __init__(self, stmt: Any, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order: list[str] | None = compiled.positiontup
        self.pg = engine.dialect.name == "postgresql"

    def args(self, values: dict[str, Any]) -> Any:
        merged = {**self.defaults, **values}
        return merged if self.order is None else tuple(merged[k] for k in self.order)

    def all(self, values: dict[str, Any]) -> list[Any]:
        """Run a SELECT on a pooled connection, outside any transaction (one statement is
        consistent by itself). A driver error comes out as SQLAlchemy's (the service maps a
        lost database to 503) and the connection leaves the pool. A connection that cannot
        be made at all (the database is down or restarting) comes out the same way: the
        pool's ``raw_connection`` hands the driver's own error up unwrapped."""
        try:
            conn = self.engine.raw_connection()
        except DBAPIError:
            raise
        except Exception as e:
            raise driver_error(self.engine, e, self.sql) from e
        try:
            driver: Any = conn.driver_connection
            try:
                if self.pg:
                    driver.autocommit = True  # no BEGIN/ROLLBACK round trips around a SELECT
                cur = conn.cursor()
                cur.execute(self.sql, self.args(values))
                rows = cur.fetchall()
                cur.close()
                if self.pg:
                    driver.autocommit = False
            except Exception as e:
                conn.invalidate(e)  # whatever state it is in, it is not reused
                raise driver_error(self.engine, e, self.sql) from e
        finally:
            conn.close()
        return list(rows)


def driver_error(engine: Engine, e: Exception, sql: str) -> Exception:
    """A driver's exception as SQLAlchemy would have raised it (``OperationalError`` for a
    lost connection...), for statements run on the driver's own cursor."""
    base = getattr(engine.dialect.loaded_dbapi, "Error", None)
    if base is None or not isinstance(e, base):
        return e
    wrapped: Exception = DBAPIError.instance(sql, None, e, base, dialect=engine.dialect)
    return wrapped


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
