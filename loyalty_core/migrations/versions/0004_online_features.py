"""The online feature table: the latest feature snapshot per customer, read by the service.

One row per customer with the as-of date of its snapshot, the catalogue version its vector follows and the
vector itself (little-endian float64 bytes). ``written_at`` is indexed so that a reader can tell from one
``max()`` whether anything changed since it last loaded the table.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "online_features",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feature_version", sa.String(length=32), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_online_features")),
    )
    with op.batch_alter_table("online_features", schema=None) as batch_op:
        batch_op.create_index("ix_online_features_written_at", ["written_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("online_features", schema=None) as batch_op:
        batch_op.drop_index("ix_online_features_written_at")
    op.drop_table("online_features")
