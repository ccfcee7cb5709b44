"""Expiry of points lots, dated at each lot's expiry so that past balances stay right.

Expiry never runs past now: a lot that is not due yet cannot be expired, by the job or by anyone (the journal
is append-only, so a premature expiry could never be taken back). Between two runs of the job, a lot that
has fallen due still sits in the balance; every operation that takes points from lots (a redemption, a hold's
capture, a claw-back) first expires the member's due lots itself, so points are never spent from a lot that
was already dead at the time of spending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.orm import Session

from loyalty_core.clock import utcnow
from loyalty_core.entries import PendingEntry, entry_row
from loyalty_core.errors import InvalidInput
from loyalty_core.idempotency import request_hash
from loyalty_core.journal import in_transaction
from loyalty_core.locks import lock_members
from loyalty_core.members import MemberState
from loyalty_core.schema import LOTS, Lot
from loyalty_core.writer import flush_members, write_entries


def expire_due(
    session: Session,
    *,
    as_of: dt.datetime,
    member_ids: Sequence[str] | None = None,
    actor: str = "system:expiry",
    now: dt.datetime | None = None,
) -> tuple[int, int]:
    """Expire what is left of every lot whose expiry is at or before ``as_of``; returns (lots, points).

    Idempotent: an expired lot has nothing left, and its expiry entry is unique per lot. The entry is dated at
    the lot's expiry so that balances as of past dates stay right whenever the run happens. ``as_of`` after
    ``now`` is refused: it would expire points that are still the customer's.
    """
    now = now or utcnow()
    check_not_after_now(as_of, now)
    if member_ids is None:
        member_ids = members_with_due_lots(session, as_of=as_of)
    members = lock_members(session, member_ids, create=False, now=now)
    if not members:
        return 0, 0
    lots, points = _expire_locked(session, members, as_of=as_of, actor=actor, now=now)
    flush_members(session, members.values())
    return lots, points


def expire_overdue(session: Session, m: MemberState, *, now: dt.datetime) -> int:
    """Expire a locked member's lots that are due by ``now``, before points are taken from their lots.

    The member's state changes in memory (the caller writes it with its own entry); returns the points
    expired.
    """
    _, points = _expire_locked(session, {m.id: m}, as_of=now, actor="system:expiry", now=now)
    return points


def check_not_after_now(as_of: dt.datetime, now: dt.datetime) -> None:
    if as_of.tzinfo is None:
        raise InvalidInput("as_of must be a timezone-aware timestamp", field="as_of")
    if as_of > now:
        raise InvalidInput(
            f"expiry cannot run as of {as_of.isoformat()}, after now ({now.isoformat()}): it would expire "
            "points that are not due yet, and the journal cannot take an expiry back",
            field="as_of",
        )


def _expire_locked(
    session: Session,
    members: Mapping[str, MemberState],
    *,
    as_of: dt.datetime,
    actor: str,
    now: dt.datetime,
) -> tuple[int, int]:
    lots = session.execute(
        select(Lot.id, Lot.member_id, Lot.remaining, Lot.expires_at)
        .where(Lot.member_id.in_(list(members)), Lot.remaining > 0, Lot.expires_at <= as_of)
        .order_by(Lot.member_id, Lot.expires_at, Lot.id)
    ).all()
    if not lots:
        return 0, 0
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
                now=now,
                actor=actor,
                req_hash=request_hash("expire", lot.id),
                response=resp,
                points=lot.remaining,
            )
        )
        entry.lines += [("points", m.id, -lot.remaining, None), ("expired", None, lot.remaining, None)]
        pending.append(entry)
    session.execute(
        update(LOTS).where(LOTS.c.id == bindparam("lid")).values(remaining=0),
        [{"lid": lot.id} for lot in lots],
    )
    write_entries(session, pending)
    return len(lots), sum(lot.remaining for lot in lots)


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    members: int
    lots: int
    points: int
    holds_voided: int


def run_expiry(
    engine: Engine,
    *,
    as_of: dt.datetime,
    now: dt.datetime | None = None,
    chunk: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> ExpiryRun:
    """Expire every lot due by ``as_of`` and void the till holds timed out by then (``loyalty expire``).

    Members go ``chunk`` to a transaction, so no transaction holds every member's lock and a failure loses
    at most one chunk's work (a re-run finishes it: expiry is idempotent). ``progress(done, total)`` is
    called after each chunk.
    """
    from loyalty_core.spending import void_timed_out_holds  # spending expires lots itself: import late

    now = now or utcnow()
    check_not_after_now(as_of, now)
    members = in_transaction(engine, lambda s: members_with_due_lots(s, as_of=as_of))
    lots = points = 0
    for start in range(0, len(members), chunk):
        part = members[start : start + chunk]

        def run(session: Session, part: Sequence[str] = part) -> tuple[int, int]:
            return expire_due(session, as_of=as_of, member_ids=part, now=now)

        n, p = in_transaction(engine, run)
        lots, points = lots + n, points + p
        if progress is not None:
            progress(start + len(part), len(members))
    voided = in_transaction(engine, lambda s: void_timed_out_holds(s, now=as_of))
    return ExpiryRun(len(members), lots, points, voided)


def members_with_due_lots(session: Session, *, as_of: dt.datetime) -> list[str]:
    return list(
        session.scalars(
            select(Lot.member_id)
            .where(Lot.remaining > 0, Lot.expires_at <= as_of)
            .distinct()
            .order_by(Lot.member_id)
        )
    )
