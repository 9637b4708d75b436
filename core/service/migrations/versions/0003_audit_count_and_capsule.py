"""audit: a count (refusals of non-grantees are aggregated) and the capsule digest

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch_op:
        batch_op.add_column(sa.Column("count", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("capsule", sa.String(length=64), server_default="",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch_op:
        batch_op.drop_column("capsule")
        batch_op.drop_column("count")
