"""Member locks: every write locks its members, in id order, before it reads anything about them.

Concurrency rule: a member's row is locked (``SELECT ... FOR UPDATE``; SQLite serialises writers with
``BEGIN IMMEDIATE``) before anything about that member is read, so two requests for the same member never
interleave, and the idempotency check happens under that lock. Locking in a fixed (id) order means two
concurrent batches cannot deadlock. Enrolment rides on the lock: a member is created by the first write
that names them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from loyalty_core.errors import NotFound
from loyalty_core.members import NEW_MEMBER_SQL, STATE_COLUMNS, MemberState, member_state
from loyalty_core.schema import MEMBERS
from loyalty_core.sql import chunks
from loyalty_core.writer import pg_fetch_together

_STATE = tuple(MEMBERS.c[c] for c in STATE_COLUMNS)
# Names come from our own schema, never from input, so building these texts is safe.
_NEW_COLUMNS = ", ".join(NEW_MEMBER_SQL)
_NEW_VALUES = ", ".join(NEW_MEMBER_SQL.values())
_RETURNED = ", ".join(STATE_COLUMNS)
# New members are inserted, then every member of the batch is locked in id order. Unlike the no-op
# ``DO UPDATE`` that SQLite's path uses, ``FOR UPDATE`` writes no new row version of an existing member, who
# is updated once at the end of the posting anyway.
_ENROL_PG = (
    f"INSERT INTO members (id, created_at, {_NEW_COLUMNS}) "  # noqa: S608
    f"SELECT u.id, %s, {_NEW_VALUES} "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, n) ORDER BY u.n "
    "ON CONFLICT (id) DO NOTHING"
)
_LOCK_PG = f"SELECT {_RETURNED} FROM members WHERE id = ANY(%s) ORDER BY id FOR UPDATE"  # noqa: S608
_ENROL: dict[int, Any] = {}


def lock_members(
    session: Session, ids: Iterable[str], *, create: bool, now: dt.datetime
) -> dict[str, MemberState]:
    """Lock members in id order (a fixed order, so concurrent batches cannot deadlock), enrolling new ones.

    Enrolling and locking is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: a new member
    is inserted, an existing one is locked by the no-op update, and either way its state comes back.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found: dict[str, MemberState] = {}
    for part in chunks(wanted, 1000):  # SQLite allows 32,766 bound parameters per statement
        if create:
            params: dict[str, Any] = {f"id{i}": m for i, m in enumerate(part)}
            params["at"] = now
            rows = session.connection().execute(_enrol_statement(len(part)), params).all()
        else:
            q = select(*_STATE).where(MEMBERS.c.id.in_(part)).order_by(MEMBERS.c.id).with_for_update()
            rows = session.execute(q).all()
        found.update((r.id, member_state(r._mapping)) for r in rows)
    return found


def lock_one(session: Session, customer_id: str, *, create: bool, now: dt.datetime) -> MemberState:
    members = lock_members(session, [customer_id], create=create, now=now)
    if customer_id not in members:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    return members[customer_id]


def enrol_and_read(
    session: Session, ids: Iterable[str], *, now: dt.datetime, also: tuple[str, Sequence[Any]]
) -> tuple[dict[str, MemberState], list[Any]] | None:
    """On PostgreSQL, ``lock_members(create=True)`` and the read ``also`` (driver SQL) in one round trip.

    None elsewhere: the caller then locks and reads in turn (SQLite has no round trips to save).
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    wanted = sorted(set(ids))
    _, members_rows, also_rows = pg_fetch_together(
        session, [(_ENROL_PG, (now, wanted)), (_LOCK_PG, (wanted,)), also]
    )
    members = {r[0]: member_state(dict(zip(STATE_COLUMNS, r, strict=True))) for r in members_rows}
    return members, also_rows


def _enrol_statement(n: int) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` for ``n`` members, built once per size.

    Plain SQL that PostgreSQL and SQLite (3.35+) both accept; building it through the expression language on
    every posting cost more than running it. The no-op update is what locks an existing member's row.
    """
    stmt = _ENROL.get(n)
    if stmt is None:
        values = ", ".join(f"(:id{i}, :at, {_NEW_VALUES})" for i in range(n))
        sql = (  # only numbered placeholders are interpolated; ids travel as bound parameters
            f"INSERT INTO members (id, created_at, {_NEW_COLUMNS}) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (id) DO UPDATE SET id = excluded.id "
            f"RETURNING {_RETURNED}"
        )
        stmt = text(sql).bindparams(bindparam("at", type_=MEMBERS.c.created_at.type)).columns(*_STATE)
        _ENROL[n] = stmt
    return stmt
