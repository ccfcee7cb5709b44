"""Points as lots: earning opens a lot that expires, spending takes from the earliest-expiring lots first.

A member's balance, the sum of their open lots and the sum of their lines always agree: ``credit`` and
``debit`` change the three together (the lines go on the entry, the lot is written with it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from loyalty_core.entries import PendingEntry
from loyalty_core.errors import InsufficientPoints
from loyalty_core.members import MemberState
from loyalty_core.rules import Rules
from loyalty_core.schema import LOTS, Hold, Lot


def credit(
    m: MemberState,
    points: int,
    entry: PendingEntry,
    rules: Rules,
    at: dt.datetime,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Book earned points: first settle the member's debt, the rest becomes a new lot. Returns lot points.

    ``at`` dates the new lot and its lines; the settlement is dated ``now`` (the recording instant, when the
    debt is known to exist), which differs from ``at`` only for a back-dated earning.
    """
    settle = min(points, m.debt)
    to_balance = points - settle
    settled_at = None if now is None or now <= at else now
    if settle:
        entry.lines.append(("programme", None, -settle, settled_at))
        entry.lines.append(("debt", m.id, settle, settled_at))
        m.debt -= settle
    if to_balance:
        entry.lines.append(("programme", None, -to_balance, None))
        entry.lines.append(("points", m.id, to_balance, None))
        entry.lot = (m.id, to_balance, at, at + rules.lot_lifetime)
        m.balance += to_balance
    m.dirty = True
    return to_balance


def debit(session: Session, m: MemberState, points: int, entry: PendingEntry, now: dt.datetime) -> None:
    """Spend points: earliest-expiring lots, journal lines and balance move together, or not at all."""
    take_from_lots(session, m.id, points, now=now)
    entry.lines += [("points", m.id, -points, None), ("redeemed", None, points, None)]
    m.balance -= points
    m.dirty = True


def active_held(session: Session, member_id: str, now: dt.datetime, exclude: str | None = None) -> int:
    """Points reserved by active holds: a till's until it times out, a held redemption's until reviewed."""
    q = select(func.coalesce(func.sum(Hold.points), 0)).where(
        Hold.member_id == member_id,
        Hold.status == "active",
        or_(Hold.expires_at.is_(None), Hold.expires_at > now),
    )
    if exclude is not None:
        q = q.where(Hold.id != exclude)
    return int(session.scalar(q) or 0)


def require_available(
    session: Session, m: MemberState, points: int, now: dt.datetime, *, hold_id: str | None = None
) -> int:
    """What the member can spend now (unexpired lots less active holds); 409 when ``points`` is more."""
    available = spendable(session, m.id, now) - active_held(session, m.id, now, exclude=hold_id)
    if points > available:
        what = f"hold {hold_id!r} needs" if hold_id else "requested"
        raise InsufficientPoints(
            f"customer {m.id!r} has {max(available, 0)} points available, {what} {points}",
            available=max(available, 0),
            requested=points,
        )
    return available


def spendable(session: Session, member_id: str, now: dt.datetime) -> int:
    q = select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.member_id == member_id, Lot.remaining > 0, Lot.expires_at > now
    )
    return int(session.scalar(q) or 0)


def take_from_lots(
    session: Session, member_id: str, points: int, *, now: dt.datetime | None, first_entry: int | None = None
) -> int:
    """Consume up to ``points`` from the member's lots, earliest expiry first; returns what was taken.

    With ``now`` only unexpired lots are used (spending); without it every lot with points left counts
    (claw-backs take whatever the balance holds). ``first_entry`` drains that entry's own lot first.
    """
    q = select(Lot.id, Lot.remaining, Lot.entry_id).where(Lot.member_id == member_id, Lot.remaining > 0)
    if now is not None:
        q = q.where(Lot.expires_at > now)
    lots = list(session.execute(q.order_by(Lot.expires_at, Lot.id)).all())
    if first_entry is not None:
        lots.sort(key=lambda r: r.entry_id != first_entry)
    left = points
    changes = []
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        left -= take
        changes.append({"lid": lot.id, "r": lot.remaining - take})
    if changes:
        session.execute(
            update(LOTS).where(LOTS.c.id == bindparam("lid")).values(remaining=bindparam("r")),
            changes,
        )
    return points - left
