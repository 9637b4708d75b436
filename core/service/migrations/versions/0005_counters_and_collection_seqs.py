"""rate-limit counters shared by processes; change numbers per collection

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "collection_seqs",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default="0"),
    )
    # Each collection goes on from its newest change number, so readers' cursors stay valid;
    # its item count and size start from what it holds.
    op.execute(
        "INSERT INTO collection_seqs (account, collection, seq, items, bytes) "
        "SELECT account, collection, MAX(seq), COUNT(*), SUM(LENGTH(ciphertext)) FROM items "
        "GROUP BY account, collection"
    )


def downgrade() -> None:
    op.drop_table("collection_seqs")
    op.drop_table("counters")
