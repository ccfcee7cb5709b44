"""Small SQL helpers that hide the one difference between our two databases the ledger meets: upserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's database (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def upsert(session: Session, table: Any, keys: list[str], set_cols: list[str]) -> Any:
    stmt = dialect_insert(session, table)
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in set_cols})


def chunks(seq: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    """Slices of at most ``size``: SQLite allows 32,766 bound parameters per statement."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
