"""A decision's ranking context in typed columns: ``k``, ``candidates`` and ``shadow_of``.

Until now the service kept them inside ``model_versions`` (JSON) next to the model versions, so every reader
had to know which keys of that object were versions and which were context, and the shadow report looked up
``model_versions["shadow_of"]`` by hand. Existing rows move their keys to the new columns (and back on
downgrade); ``model_versions`` keeps the versions and ``probability_method``.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTEXT = ("k", "candidates", "shadow_of")
PAGE = 5_000  # rows per read: a year of service decisions must not sit in memory at once


def _decisions(*context: str) -> sa.TableClause:
    extra: dict[str, Any] = {"k": sa.Integer(), "candidates": sa.JSON(), "shadow_of": sa.String(64)}
    return sa.table(
        "decisions",
        sa.column("id", sa.String(64)),
        sa.column("model_versions", sa.JSON()),
        *(sa.column(name, extra[name]) for name in context),
    )


def _rewrite(table: sa.TableClause, columns: Sequence[str], change: Any) -> None:
    """Page through decisions by id and update those ``change`` (row mapping -> new values or None) alters."""
    conn = op.get_bind()
    last = ""
    while True:
        page = conn.execute(
            sa.select(*(table.c[name] for name in columns))
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        for row in page:
            values = change(row._mapping)
            if values is not None:
                conn.execute(table.update().where(table.c.id == row.id).values(**values))
        last = page[-1].id


def _out_of_versions(row: Any) -> dict[str, Any] | None:
    versions = row["model_versions"]
    if not isinstance(versions, dict) or not any(key in versions for key in CONTEXT):
        return None
    return {
        "k": None if versions.get("k") is None else int(versions["k"]),
        "candidates": versions.get("candidates"),
        "shadow_of": None if versions.get("shadow_of") is None else str(versions["shadow_of"]),
        "model_versions": {key: v for key, v in versions.items() if key not in CONTEXT},
    }


def _into_versions(row: Any) -> dict[str, Any] | None:
    context = {key: row[key] for key in CONTEXT if row[key] is not None}
    if not context:
        return None
    return {"model_versions": {**(row["model_versions"] or {}), **context}}


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("k", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("candidates", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("shadow_of", sa.String(length=64), nullable=True))
    table = _decisions(*CONTEXT)
    _rewrite(table, ("id", "model_versions"), _out_of_versions)


def downgrade() -> None:
    table = _decisions(*CONTEXT)
    _rewrite(table, ("id", "model_versions", *CONTEXT), _into_versions)
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("shadow_of")
        batch_op.drop_column("candidates")
        batch_op.drop_column("k")
