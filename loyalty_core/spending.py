"""Spending points: instant redemptions and two-phase holds at a till (reserve, then capture or void).

A hold resolves exactly once, whoever gets there first: the till's capture or void, or the timeout (the
expiry job's sweep, or a void that arrives after the timeout). Every path locks the member first, like every
other write, then re-reads the hold and changes it only while it is still active (a conditional UPDATE, so
the database itself refuses a second resolution). Every stored answer is a complete answer: a replay of a
timed-out hold's void returns the same fields as a till's void.

A redemption that the fraud checks hold reserves its points as a hold of kind ``review`` until an admin
releases it (the points are spent then) or rejects it (they are free again).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.clock import utcnow
from loyalty_core.entries import PendingEntry, entry_row
from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.expiry import expire_overdue
from loyalty_core.idempotency import replay, request_hash
from loyalty_core.journal import open_operation, record
from loyalty_core.locks import lock_members, lock_one
from loyalty_core.lots import debit, require_available
from loyalty_core.members import MemberState
from loyalty_core.rules import (
    Rules,
    fraud_reason_for_redemption,
)
from loyalty_core.schema import Entry, Hold, Lot
from loyalty_core.validation import check_id, check_points, check_reward
from loyalty_core.writer import write_entries

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
    check_id(redemption_id, "redemption_id", bounds.EXT_ID_LEN)
    check_id(customer_id, "customer_id")
    check_points(points)
    check_reward(reward)
    body = (customer_id, points, reward)
    op = open_operation(session, "redeem", redemption_id, customer_id, body, create=False, now=now)
    if op.prior is not None:
        return op.prior
    m, req = op.member, op.req_hash
    expire_overdue(session, m, now=now)
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
    else:  # the points stay reserved until an admin releases or rejects the redemption
        session.add(
            Hold(
                id=review_hold_id(redemption_id),
                kind="review",
                member_id=m.id,
                points=points,
                reward=reward,
                status="active",
                created_at=now,
                expires_at=None,
            )
        )
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
    record(session, entry, m, response)
    session.flush()  # the reservation, if any
    return response


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
    check_id(hold_id, "hold_id", bounds.EXT_ID_LEN)
    check_id(customer_id, "customer_id")
    check_points(points)
    check_reward(reward)
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 86400:
        raise InvalidInput("timeout_seconds must be between 1 and 86400", field="timeout_seconds")
    timeout = dt.timedelta(seconds=timeout_seconds) if timeout_seconds else rules.hold_timeout
    body = (customer_id, points, reward, timeout_seconds)
    op = open_operation(session, "hold", hold_id, customer_id, body, create=False, now=now)
    if op.prior is not None:
        return op.prior
    m, req = op.member, op.req_hash
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


def review_hold_id(redemption_id: str) -> str:
    """The id of the reservation that keeps a held redemption's points until it is reviewed."""
    return f"redemption:{redemption_id}"


def _hold_answer(hold: Hold, m: MemberState, *, reason: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "hold_id": hold.id,
        "customer_id": m.id,
        "points": hold.points,
        "status": hold.status,
        "balance": m.balance,
    }
    if reason is not None:
        answer["reason"] = reason
    return answer


def _resolve(session: Session, hold: Hold, status: str, at: dt.datetime) -> None:
    """Move an active hold to its final state; refuses (409) if someone resolved it first."""
    done = session.execute(
        update(Hold)
        .where(Hold.id == hold.id, Hold.status == "active")
        .values(status=status, settled_at=at)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"hold {hold.id!r} was resolved by another request", code="hold_not_active")
    hold.status = status
    hold.settled_at = at


def _locked_hold(session: Session, hold_id: str) -> Hold | None:
    return session.execute(
        select(Hold).where(Hold.id == hold_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _settle_hold(
    session: Session, hold_id: str, *, capture: bool, actor: str, now: dt.datetime
) -> dict[str, Any]:
    check_id(hold_id, "hold_id", bounds.EXT_ID_LEN)
    kind = "capture" if capture else "void"
    member_id = session.scalar(select(Hold.member_id).where(Hold.id == hold_id, Hold.kind == "till"))
    if member_id is None:
        raise NotFound(f"unknown hold {hold_id!r}", code="unknown_hold")
    op = open_operation(session, kind, hold_id, member_id, (hold_id,), create=False, now=now)
    m, req = op.member, op.req_hash
    if op.prior is not None:
        # Answers stored before every answer was complete (a timeout sweep's) lack the balance.
        return {"balance": m.balance, **op.prior}
    hold = _locked_hold(session, hold_id)
    assert hold is not None
    assert hold.expires_at is not None
    timed_out = hold.status == "active" and hold.expires_at <= now
    if hold.status != "active" or (capture and timed_out):
        state = "timed out" if timed_out else hold.status
        raise Conflict(f"hold {hold_id!r} is {state} and cannot be {kind}d", code="hold_not_active")
    if timed_out:  # a void after the timeout: the hold lapsed, whoever records it
        return _time_out(session, hold, m, actor=actor, now=now)
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
        expire_overdue(session, m, now=now)
        require_available(session, m, hold.points, now, hold_id=hold_id)
        debit(session, m, hold.points, entry, now)
    _resolve(session, hold, "captured" if capture else "voided", now)
    return record(session, entry, m, _hold_answer(hold, m))


def _time_out(
    session: Session, hold: Hold, m: MemberState, *, actor: str, now: dt.datetime
) -> dict[str, Any]:
    """Void a lapsed hold as of its timeout: the same entry and answer whoever records it (sweep or till)."""
    assert hold.expires_at is not None
    _resolve(session, hold, "voided", hold.expires_at)
    answer = _hold_answer(hold, m, reason="timeout")
    entry = PendingEntry(
        entry_row(
            "void",
            hold.id,
            m.id,
            status="posted",
            effective_at=hold.expires_at,
            now=now,
            actor=actor,
            req_hash=request_hash("void", hold.id),
            response=answer,
            points=hold.points,
            reason="timeout",
            detail={"reward": hold.reward},
        )
    )
    return record(session, entry, m, answer)


def capture_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=True, actor=actor, now=now or utcnow())


def void_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=False, actor=actor, now=now or utcnow())


def void_timed_out_holds(session: Session, *, now: dt.datetime | None = None) -> int:
    """Void the till holds past their timeout. Spendability never waits for this: it ignores them already.

    The members are locked first (in id order, like every batch), and each hold is re-read under the lock,
    so a capture that got there first wins and the sweep leaves that hold alone.
    """
    now = now or utcnow()
    due = (Hold.kind == "till", Hold.status == "active", Hold.expires_at <= now)
    member_ids = list(session.scalars(select(Hold.member_id).where(*due).distinct()))
    if not member_ids:
        return 0
    members = lock_members(session, member_ids, create=False, now=now)
    holds = (
        session.execute(
            select(Hold)
            .where(*due, Hold.member_id.in_(list(members)))
            .order_by(Hold.id)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    for h in holds:
        _time_out(session, h, members[h.member_id], actor="system:timeout", now=now)
    return len(holds)


def review_held_redemption(
    session: Session, *, redemption_id: str, approve: bool, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Release a redemption the fraud checks held (its points are spent now) or reject it; once each.

    Its points were reserved when it was held, so a release cannot fail for points spent meanwhile; it can
    only fail if lots expired in between (409 ``insufficient_points``, and the redemption stays held).
    """
    now = now or utcnow()
    check_id(redemption_id, "redemption_id", bounds.EXT_ID_LEN)
    original = session.execute(
        select(Entry).where(Entry.kind == "redeem", Entry.ext_id == redemption_id)
    ).scalar()
    if original is None or original.member_id is None:
        raise NotFound(f"unknown redemption {redemption_id!r}", code="unknown_redemption")
    m = lock_one(session, original.member_id, create=False, now=now)
    req = request_hash("redeem_review", redemption_id, approve)
    done = session.execute(
        select(Entry.request_hash, Entry.response, Entry.status).where(
            Entry.kind == "redeem_review", Entry.ext_id == redemption_id
        )
    ).first()
    if done is not None:
        if done.request_hash != req:
            verdict = "released" if done.status == "posted" else "rejected"
            raise Conflict(f"redemption {redemption_id!r} was already {verdict}", code="already_reviewed")
        return dict(replay(session, "redeem_review", redemption_id, req) or {})
    if original.status != "held":
        raise Conflict(f"redemption {redemption_id!r} is not held", code="not_held")
    hold = _locked_hold(session, review_hold_id(redemption_id))
    entry = PendingEntry(
        entry_row(
            "redeem_review",
            redemption_id,
            m.id,
            status="posted" if approve else "rejected",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=original.points if approve else 0,
            parent_id=original.id,
            detail=original.detail,
        )
    )
    if approve:
        expire_overdue(session, m, now=now)
        require_available(session, m, original.points, now, hold_id=hold.id if hold is not None else None)
        debit(session, m, original.points, entry, now)
    if hold is not None and hold.status == "active":
        _resolve(session, hold, "captured" if approve else "voided", now)
    response = {
        "redemption_id": redemption_id,
        "customer_id": m.id,
        "points": original.points,
        "status": "released" if approve else "rejected",
        "balance": m.balance,
    }
    return record(session, entry, m, response)
