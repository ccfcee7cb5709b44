"""Customers' attributes, the decision log and offer funnel events; offers get free-form attributes.

What the models need beside the ledger: static customer attributes (from an import or the simulator), every
decision with the probability it was made with (historical random campaigns included, so uplift and
off-policy evaluation read one log), and the sent/viewed/activated/completed funnel. Column types are frozen
as plain SQLAlchemy types, as in 0001.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 19:59:10.140303
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("joined_on", sa.Date(), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("income", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("income_band", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=True),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("served", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("offers", sa.JSON(), nullable=True),
        sa.Column("model_versions", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_customer_made", ["customer_id", "made_at"], unique=False)
        batch_op.create_index("ix_decisions_policy_made", ["policy", "made_at"], unique=False)

    op.create_table(
        "offer_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("ext_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_offer_events_offer_id_offers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_events")),
        sa.UniqueConstraint("ext_id", name="uq_offer_events_ext_id"),
    )
    with op.batch_alter_table("offer_events", schema=None) as batch_op:
        batch_op.create_index("ix_offer_events_customer_at", ["customer_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_offer_events_decision", ["decision_id"], unique=False)
        batch_op.create_index("ix_offer_events_offer_at", ["offer_id", "occurred_at"], unique=False)

    # Plain ADD COLUMN (SQLite has it): a batch copy-and-move of ``offers`` would trip the foreign keys of
    # ``activations`` that point at it.
    op.add_column("offers", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    # In place on both backends (SQLite >= 3.35), for the same reason.
    op.execute("ALTER TABLE offers DROP COLUMN attributes")

    with op.batch_alter_table("offer_events", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_events_offer_at")
        batch_op.drop_index("ix_offer_events_decision")
        batch_op.drop_index("ix_offer_events_customer_at")

    op.drop_table("offer_events")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_policy_made")
        batch_op.drop_index("ix_decisions_customer_made")

    op.drop_table("decisions")
    op.drop_table("customers")
