"""Holds of two kinds: a till's reservation, and the reservation of a redemption awaiting fraud review.

A redemption the fraud checks hold must keep its points reserved until an admin releases or rejects it, or
they could be spent twice meanwhile. Such a reservation is a hold of kind ``review`` (id
``redemption:<redemption_id>``, so the id widens to 160 characters) with no timeout: ``expires_at`` becomes
nullable, and a NULL means "until reviewed".

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="till"))
        batch_op.alter_column(
            "id", existing_type=sa.String(length=128), type_=sa.String(length=160), existing_nullable=False
        )
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM holds WHERE kind <> 'till'")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column(
            "id", existing_type=sa.String(length=160), type_=sa.String(length=128), existing_nullable=False
        )
        batch_op.drop_column("kind")
