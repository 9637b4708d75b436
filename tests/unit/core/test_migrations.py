"""Alembic's migrations create exactly the tables of models.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from keystead.core.service.db import make_engine, migrate
from keystead.core.service.models import Base
from sqlalchemy import Engine, create_engine, inspect, text


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    """An empty database: a fresh SQLite file, or a fresh schema on PostgreSQL."""
    if database_url.startswith("sqlite"):
        engine = make_engine(database_url)
        yield engine
        engine.dispose()
        return
    schema = f"mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(database_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_upgrade_on_an_empty_database_matches_the_models(empty_engine: Engine) -> None:
    assert inspect(empty_engine).get_table_names() == []
    migrate(empty_engine)
    tables = set(inspect(empty_engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    with empty_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_upgrade_twice_is_harmless(empty_engine: Engine) -> None:
    migrate(empty_engine)
    migrate(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"


def test_spool_ids_are_never_reused_after_a_delete(tmp_path):
    """Upgraded from 0001, SQLite must not hand the id of a deleted newest message out again."""
    from keystead.core.service.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'spool.sqlite'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO spool (account, channel, sender, body, created) "
                "VALUES ('a', 'c', 's', x'00', 0)"
            )
        )
        first = conn.execute(text("SELECT max(id) FROM spool")).scalar()
        conn.execute(text("DELETE FROM spool"))
        conn.execute(
            text(
                "INSERT INTO spool (account, channel, sender, body, created) "
                "VALUES ('a', 'c', 's', x'00', 0)"
            )
        )
        second = conn.execute(text("SELECT max(id) FROM spool")).scalar()
    assert second > first
    indexes = {i["name"] for i in inspect(engine).get_indexes("spool")}
    assert "ix_spool_channel" in indexes
