"""Refunds and chargebacks that claw points back, and the review of postings held by fraud checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.clock import utcnow
from loyalty_core.entries import PendingEntry, entry_row
from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.expiry import expire_overdue
from loyalty_core.journal import open_operation, record
from loyalty_core.lots import credit, take_from_lots
from loyalty_core.rules import (
    Rules,
    add_spend,
    reversal_points,
)
from loyalty_core.schema import Entry
from loyalty_core.validation import check_amount, check_id


def _credit(session: Session, original: Entry) -> tuple[int, int]:
    """The points a transaction credited and the entry that holds its lot: the posting itself, or the review
    that released it (a held posting earns nothing, and gets no lot, until it is released)."""
    if original.status == "posted":
        return original.points, original.id
    review = session.execute(
        select(Entry).where(Entry.kind == "review", Entry.ext_id == original.ext_id)
    ).scalar()
    if review is not None and review.status == "posted":
        return review.points, review.id
    return 0, original.id


def reverse(
    session: Session,
    *,
    transaction_id: str,
    reversal_id: str,
    amount: Decimal | None,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Claw back the points of a refunded transaction (all of it, or in proportion to a partial refund).

    The original's own lot goes first, then the earliest-expiring ones; what the balance cannot cover is kept
    as debt, which later earnings settle before anything reaches the balance.
    """
    now = now or utcnow()
    check_id(transaction_id, "transaction_id", bounds.EXT_ID_LEN)
    check_id(reversal_id, "reversal_id", bounds.EXT_ID_LEN)
    refund = check_amount(amount) if amount is not None else None
    original = session.execute(
        select(Entry).where(Entry.kind == "earn", Entry.ext_id == transaction_id)
    ).scalar()
    if original is None or original.member_id is None or original.amount is None:
        raise NotFound(f"unknown transaction {transaction_id!r}", code="unknown_transaction")
    body = (transaction_id, refund)
    op = open_operation(session, "reverse", reversal_id, original.member_id, body, create=False, now=now)
    if op.prior is not None:
        return op.prior
    m, req = op.member, op.req_hash
    before = session.execute(
        select(func.coalesce(func.sum(Entry.amount), 0)).where(
            Entry.kind == "reverse", Entry.parent_id == original.id
        )
    ).scalar_one()
    refunded_before = Decimal(before or 0)
    left = original.amount - refunded_before
    if refund is None:
        refund = left
    if left <= 0:
        raise Conflict(f"transaction {transaction_id!r} is already fully reversed", code="already_reversed")
    if refund > left:
        raise InvalidInput(f"amount {refund} exceeds what is left to refund ({left})", field="amount")
    credited, lot_entry = _credit(session, original)
    pts = reversal_points(credited, original.amount, refunded_before, refund)
    expire_overdue(session, m, now=now)  # points that were dead by now cannot be clawed back from
    taken = take_from_lots(session, m.id, min(pts, m.balance), now=None, first_entry=lot_entry)
    shortfall = pts - taken
    entry = PendingEntry(
        entry_row(
            "reverse",
            reversal_id,
            m.id,
            status="posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=pts,
            parent_id=original.id,
            amount=refund,
            txn_type=original.txn_type,
            currency=original.currency,
        )
    )
    if pts:
        if taken:
            entry.lines.append(("points", m.id, -taken, None))
        if shortfall:
            entry.lines.append(("debt", m.id, -shortfall, None))
        entry.lines.append(("reversed", None, pts, None))
        m.balance -= taken
        m.debt += shortfall
        m.dirty = True
    if original.status == "posted" and original.txn_type in rules.qualifying_types:
        home = rules.in_home_currency(refund, original.currency or rules.currency)
        add_spend(m.spend, original.effective_at, -home)
        m.dirty = True
    response = {
        "reversal_id": reversal_id,
        "transaction_id": transaction_id,
        "customer_id": m.id,
        "amount": str(refund),
        "points_reversed": pts,
        "debt": m.debt,
        "balance": m.balance,
    }
    return record(session, entry, m, response)


def review_held(
    session: Session,
    *,
    transaction_id: str,
    approve: bool,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Release a held posting (credited as of now) or confirm its rejection; once per posting."""
    now = now or utcnow()
    check_id(transaction_id, "transaction_id", bounds.EXT_ID_LEN)
    original = session.execute(
        select(Entry).where(Entry.kind == "earn", Entry.ext_id == transaction_id)
    ).scalar()
    if original is None or original.member_id is None:
        raise NotFound(f"unknown transaction {transaction_id!r}", code="unknown_transaction")
    body = (transaction_id, approve)
    op = open_operation(session, "review", transaction_id, original.member_id, body, create=False, now=now)
    if op.prior is not None:
        return op.prior
    m, req = op.member, op.req_hash
    if original.status != "held":
        raise Conflict(f"transaction {transaction_id!r} is not held", code="not_held")
    reversed_any = session.scalar(
        select(func.count()).where(Entry.kind == "reverse", Entry.parent_id == original.id)
    )
    if approve and reversed_any:
        raise Conflict(
            f"transaction {transaction_id!r} was reversed while held; it cannot be released",
            code="reversed_while_held",
        )
    entry = PendingEntry(
        entry_row(
            "review",
            transaction_id,
            m.id,
            status="posted" if approve else "rejected",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=original.points if approve else 0,
            parent_id=original.id,
        )
    )
    if approve and original.points:
        credit(m, original.points, entry, rules, now)
        m.dirty = True
    response = {
        "transaction_id": transaction_id,
        "customer_id": m.id,
        "status": "released" if approve else "rejected",
        "points": entry.row["points"],
        "balance": m.balance,
    }
    return record(session, entry, m, response)
