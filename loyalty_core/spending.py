"""Spending points: instant redemptions and two-phase holds at a till (reserve, then capture or void)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.journal import (
    PendingEntry,
    check_id,
    check_points,
    check_reward,
    debit,
    entry_row,
    lock_one,
    record,
    replay,
    request_hash,
    require_available,
    utcnow,
    write_entries,
)
from loyalty_core.rules import (
    Rules,
    fraud_reason_for_redemption,
)
from loyalty_core.schema import Hold, Lot

log = logging.getLogger(__name__)


def redeem(
    session: Session,
    *,
    redemption_id: str,
    customer_id: str,
    points: int,
    reward: str,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Spend points at once, earliest-expiring lots first; a short balance is a 409, never a negative one."""
    now = now or utcnow()
    check_id(redemption_id, "redemption_id", 128)
    check_id(customer_id, "customer_id")
    check_points(points)
    check_reward(reward)
    req = request_hash("redeem", customer_id, points, reward)
    m = lock_one(session, customer_id, create=False, now=now)
    if (prior := replay(session, "redeem", redemption_id, req)) is not None:
        return prior
    require_available(session, m, points, now)
    recently = int(
        session.scalar(
            select(func.coalesce(func.sum(Lot.points), 0)).where(
                Lot.member_id == m.id, Lot.earned_at > now - rules.fraud.rapid_redeem_window
            )
        )
        or 0
    )
    reason = fraud_reason_for_redemption(rules.fraud, points=points, recently_earned=recently)
    entry = PendingEntry(
        entry_row(
            "redeem",
            redemption_id,
            m.id,
            status="held" if reason else "posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=points,
            reason=reason,
            detail={"reward": reward},
        )
    )
    if reason is None:
        debit(session, m, points, entry, now)
    response = {
        "redemption_id": redemption_id,
        "customer_id": m.id,
        "points": points,
        "reward": reward,
        "status": entry.row["status"],
        "balance": m.balance,
    }
    if reason:
        response["reason"] = reason
        log.warning("redemption held: customer=%s redemption=%s %s", m.id, redemption_id, reason)
    return record(session, entry, m, response)


def create_hold(
    session: Session,
    *,
    hold_id: str,
    customer_id: str,
    points: int,
    reward: str,
    rules: Rules,
    actor: str,
    timeout_seconds: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Reserve points at a till: they stop being spendable until the hold is captured, voided or times out."""
    now = now or utcnow()
    check_id(hold_id, "hold_id", 128)
    check_id(customer_id, "customer_id")
    check_points(points)
    check_reward(reward)
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 86400:
        raise InvalidInput("timeout_seconds must be between 1 and 86400", field="timeout_seconds")
    timeout = dt.timedelta(seconds=timeout_seconds) if timeout_seconds else rules.hold_timeout
    req = request_hash("hold", customer_id, points, reward, timeout_seconds)
    m = lock_one(session, customer_id, create=False, now=now)
    if (prior := replay(session, "hold", hold_id, req)) is not None:
        return prior
    available = require_available(session, m, points, now)
    expires = now + timeout
    session.add(
        Hold(
            id=hold_id,
            member_id=m.id,
            points=points,
            reward=reward,
            status="active",
            created_at=now,
            expires_at=expires,
        )
    )
    response = {
        "hold_id": hold_id,
        "customer_id": m.id,
        "points": points,
        "status": "active",
        "expires_at": expires.isoformat(),
        "available": available - points,
        "balance": m.balance,
    }
    write_entries(
        session,
        [
            PendingEntry(
                entry_row(
                    "hold",
                    hold_id,
                    m.id,
                    status="posted",
                    effective_at=now,
                    now=now,
                    actor=actor,
                    req_hash=req,
                    response=response,
                    points=points,
                    detail={"reward": reward},
                )
            )
        ],
    )
    session.flush()
    return response


def _settle_hold(
    session: Session, hold_id: str, *, capture: bool, actor: str, now: dt.datetime
) -> dict[str, Any]:
    check_id(hold_id, "hold_id", 128)
    kind = "capture" if capture else "void"
    member_id = session.scalar(select(Hold.member_id).where(Hold.id == hold_id))
    if member_id is None:
        raise NotFound(f"unknown hold {hold_id!r}", code="unknown_hold")
    m = lock_one(session, member_id, create=False, now=now)
    req = request_hash(kind, hold_id)
    if (prior := replay(session, kind, hold_id, req)) is not None:
        return prior
    hold = session.execute(select(Hold).where(Hold.id == hold_id)).scalar_one()
    timed_out = hold.status == "active" and hold.expires_at <= now
    if hold.status != "active" or (capture and timed_out):
        state = "timed out" if timed_out else hold.status
        raise Conflict(f"hold {hold_id!r} is {state} and cannot be {kind}d", code="hold_not_active")
    entry = PendingEntry(
        entry_row(
            kind,
            hold_id,
            m.id,
            status="posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=hold.points,
            detail={"reward": hold.reward},
        )
    )
    if capture:
        require_available(session, m, hold.points, now, hold_id=hold_id)
        debit(session, m, hold.points, entry, now)
    hold.status = "captured" if capture else "voided"
    hold.settled_at = now
    response = {
        "hold_id": hold_id,
        "customer_id": m.id,
        "points": hold.points,
        "status": hold.status,
        "balance": m.balance,
    }
    record(session, entry, m, response)
    session.flush()  # the hold's new status
    return response


def capture_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=True, actor=actor, now=now or utcnow())


def void_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=False, actor=actor, now=now or utcnow())


def void_timed_out_holds(session: Session, *, now: dt.datetime | None = None) -> int:
    """Mark holds past their timeout as voided. Spendability never waits for this: it ignores them already."""
    now = now or utcnow()
    holds = (
        session.execute(select(Hold).where(Hold.status == "active", Hold.expires_at <= now).order_by(Hold.id))
        .scalars()
        .all()
    )
    pending = []
    for h in holds:
        h.status = "voided"
        h.settled_at = h.expires_at
        resp = {
            "hold_id": h.id,
            "customer_id": h.member_id,
            "points": h.points,
            "status": "voided",
            "reason": "timeout",
        }
        pending.append(
            PendingEntry(
                entry_row(
                    "void",
                    h.id,
                    h.member_id,
                    status="posted",
                    effective_at=h.expires_at,
                    now=now,
                    actor="system:timeout",
                    req_hash=request_hash("void", h.id),
                    response=resp,
                    points=h.points,
                    reason="timeout",
                )
            )
        )
    write_entries(session, pending)
    session.flush()
    return len(holds)
