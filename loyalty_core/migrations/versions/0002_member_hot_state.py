"""Keep each member's hot posting state on the member row; drop ``spend_months``.

Every posting locks its member's row anyway. Carrying the tier spend per month, the recent posting times
for the velocity check and the latest offer expiry on that row lets a posting skip three reads and one
upsert, which is most of what it cost (see benchmarks/ledger.py). Existing monthly spend is carried over.

Revision ID: 0002
Revises: 0001
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("spend", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("recent", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("offers_until", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    members = sa.table(
        "members", sa.column("id"), sa.column("spend", sa.JSON()), sa.column("recent", sa.JSON())
    )
    spend: dict[str, dict[str, str]] = defaultdict(dict)
    for member_id, month, amount in conn.execute(
        sa.text("SELECT member_id, month, amount FROM spend_months")
    ):
        key = str(month)[:7]
        spend[member_id][key] = str(amount)
    for member_id, months in spend.items():
        conn.execute(members.update().where(members.c.id == member_id).values(spend=months))
    conn.execute(
        sa.text(
            "UPDATE members SET offers_until = "
            "(SELECT max(a.expires_at) FROM activations a WHERE a.member_id = members.id)"
        )
    )
    conn.execute(members.update().where(members.c.spend.is_(None)).values(spend={}))
    conn.execute(members.update().values(recent=[]))
    with op.batch_alter_table("members") as batch:
        batch.alter_column("spend", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("recent", existing_type=sa.JSON(), nullable=False)
    op.drop_table("spend_months")


def downgrade() -> None:
    op.create_table(
        "spend_months",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "month", name=op.f("pk_spend_months")),
    )
    conn = op.get_bind()
    months = sa.table(
        "spend_months",
        sa.column("member_id"),
        sa.column("month", sa.Date()),
        sa.column("amount", sa.Numeric()),
    )
    rows = [
        {"member_id": member_id, "month": date.fromisoformat(f"{key}-01"), "amount": Decimal(amount)}
        for member_id, spend in conn.execute(sa.text("SELECT id, spend FROM members"))
        for key, amount in (json.loads(spend) if isinstance(spend, str) else spend or {}).items()
    ]
    if rows:
        conn.execute(months.insert(), rows)
    with op.batch_alter_table("members") as batch:
        batch.drop_column("offers_until")
        batch.drop_column("recent")
        batch.drop_column("spend")
