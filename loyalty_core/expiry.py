"""Expiry of points lots, dated at each lot's expiry so that past balances stay right."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from loyalty_core.journal import (
    LOTS,
    PendingEntry,
    entry_row,
    flush_members,
    lock_members,
    request_hash,
    utcnow,
    write_entries,
)
from loyalty_core.schema import Lot


def expire_due(
    session: Session,
    *,
    as_of: dt.datetime,
    member_ids: Sequence[str] | None = None,
    actor: str = "system:expiry",
) -> tuple[int, int]:
    """Expire what is left of every lot whose expiry is at or before ``as_of``; returns (lots, points).

    Idempotent: an expired lot has nothing left, and its expiry entry is unique per lot. The entry is dated at
    the lot's expiry so that balances as of past dates stay right whenever the run happens.
    """
    if member_ids is None:
        member_ids = members_with_due_lots(session, as_of=as_of)
    members = lock_members(session, member_ids, create=False, now=as_of)
    if not members:
        return 0, 0
    lots = session.execute(
        select(Lot.id, Lot.member_id, Lot.remaining, Lot.expires_at)
        .where(Lot.member_id.in_(list(members)), Lot.remaining > 0, Lot.expires_at <= as_of)
        .order_by(Lot.member_id, Lot.expires_at, Lot.id)
    ).all()
    pending = []
    for lot in lots:
        m = members[lot.member_id]
        m.balance -= lot.remaining
        m.dirty = True
        resp = {
            "lot_id": lot.id,
            "customer_id": m.id,
            "points": lot.remaining,
            "expired_at": lot.expires_at.isoformat(),
        }
        entry = PendingEntry(
            entry_row(
                "expire",
                f"lot:{lot.id}",
                m.id,
                status="posted",
                effective_at=lot.expires_at,
                now=utcnow(),
                actor=actor,
                req_hash=request_hash("expire", lot.id),
                response=resp,
                points=lot.remaining,
            )
        )
        entry.lines += [("points", m.id, -lot.remaining), ("expired", None, lot.remaining)]
        pending.append(entry)
    if lots:
        session.execute(
            update(LOTS).where(LOTS.c.id == bindparam("lid")).values(remaining=0),
            [{"lid": lot.id} for lot in lots],
        )
    write_entries(session, pending)
    flush_members(session, members.values())
    return len(lots), sum(lot.remaining for lot in lots)


def members_with_due_lots(session: Session, *, as_of: dt.datetime) -> list[str]:
    return list(
        session.scalars(
            select(Lot.member_id)
            .where(Lot.remaining > 0, Lot.expires_at <= as_of)
            .distinct()
            .order_by(Lot.member_id)
        )
    )
