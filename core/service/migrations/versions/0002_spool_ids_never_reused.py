"""spool and audit ids are never reused (SQLite AUTOINCREMENT)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("spool", "audit")


def _recreate(autoincrement: bool) -> None:
    # PostgreSQL sequences never hand out an id twice; only SQLite needs the table rebuilt.
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
