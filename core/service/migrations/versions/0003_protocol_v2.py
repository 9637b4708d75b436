"""protocol version 2: grants per epoch, items name and sign their writer

Revision ID: 0003
Revises: 0002

Version 2 reads no version 1 data (pre-release): a database that holds accounts
is refused with one line naming both versions, before anything is changed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


class ProtocolVersionError(RuntimeError):
    """The database holds data of another protocol version."""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM accounts")).scalar():
        raise ProtocolVersionError(
            "this database holds Keystead protocol version 1 data; this service speaks "
            "version 2 and reads none of it (pre-release): start on a new database"
        )
    # Both tables are empty here (no accounts): made again with their version 2 columns.
    op.drop_table("grants")
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("target_generation", sa.Integer(), nullable=False),
        sa.Column("kfrag", sa.LargeBinary(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account", "key", "epoch", "target_kind", "target"),
    )
    op.drop_index("ix_items_changes", table_name="items")
    op.drop_table("items")
    op.create_table(
        "items",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("proof", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("account", "collection", "item_id"),
    )
    op.create_index("ix_items_changes", "items", ["account", "collection", "seq"])
    with op.batch_alter_table("chain_entries") as b:
        b.add_column(sa.Column("new_key_sig", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    raise ProtocolVersionError("protocol version 2 does not go back to version 1")
