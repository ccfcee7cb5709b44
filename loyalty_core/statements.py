"""Reading the ledger: the customer's view, balances as of past dates, and the invariant audit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty_core.clock import utcnow
from loyalty_core.errors import NotFound
from loyalty_core.lots import active_held, spendable
from loyalty_core.rules import (
    Rules,
    rolling_spend,
    tier_for,
)
from loyalty_core.schema import Activation, Line, Lot, Member, Offer


def customer_tier(session: Session, member_id: str, at: dt.datetime, rules: Rules) -> str:
    spend = session.scalar(select(Member.spend).where(Member.id == member_id)) or {}
    return tier_for(rolling_spend({k: Decimal(v) for k, v in spend.items()}, at), rules.tiers).name


def customer_view(
    session: Session,
    customer_id: str,
    *,
    rules: Rules,
    now: dt.datetime | None = None,
    expiring_limit: int = 12,
) -> dict[str, Any]:
    now = now or utcnow()
    m = session.get(Member, customer_id)
    if m is None:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    expiring = session.execute(
        select(Lot.expires_at, func.sum(Lot.remaining).label("points"))
        .where(Lot.member_id == m.id, Lot.remaining > 0)
        .group_by(Lot.expires_at)
        .order_by(Lot.expires_at)
        .limit(expiring_limit)
    ).all()
    offers = session.execute(
        select(Activation, Offer)
        .join(Offer, Offer.id == Activation.offer_id)
        .where(Activation.member_id == m.id, Activation.activated_at <= now, Activation.expires_at > now)
        .order_by(Activation.expires_at)
    ).all()
    held = active_held(session, m.id, now)
    return {
        "customer_id": m.id,
        "balance": m.balance,
        "available": max(spendable(session, m.id, now) - held, 0),
        "held": held,
        "debt": m.debt,
        "tier": customer_tier(session, m.id, now, rules),
        "expiring": [{"points": int(r.points), "expires_at": r.expires_at.isoformat()} for r in expiring],
        "active_offers": [activation_view(a, o) for a, o in offers],
        "member_since": m.created_at.isoformat(),
    }


def balance_as_of(session: Session, customer_id: str, as_of: dt.datetime) -> dict[str, Any]:
    """The member's points and debt as the journal stood at ``as_of`` (statements and audits)."""
    if session.get(Member, customer_id) is None:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    rows = session.execute(
        select(Line.account, func.coalesce(func.sum(Line.points), 0))
        .where(
            Line.member_id == customer_id, Line.account.in_(["points", "debt"]), Line.effective_at <= as_of
        )
        .group_by(Line.account)
    ).all()
    sums = {acc: int(total) for acc, total in rows}
    return {
        "customer_id": customer_id,
        "as_of": as_of.isoformat(),
        "balance": sums.get("points", 0),
        "debt": -sums.get("debt", 0),
    }


def check_invariants(session: Session) -> list[str]:
    """Every way the ledger could disagree with itself; empty when all is well (used by tests and audits)."""
    problems: list[str] = []
    for eid, total in session.execute(
        select(Line.entry_id, func.sum(Line.points))
        .group_by(Line.entry_id)
        .having(func.sum(Line.points) != 0)
    ):
        problems.append(f"entry {eid} lines sum to {total}")
    lines = dict(
        session.execute(
            select(Line.member_id, func.sum(Line.points))
            .where(Line.account == "points")
            .group_by(Line.member_id)
        ).all()
    )
    debts = dict(
        session.execute(
            select(Line.member_id, func.sum(Line.points))
            .where(Line.account == "debt")
            .group_by(Line.member_id)
        ).all()
    )
    lots = dict(session.execute(select(Lot.member_id, func.sum(Lot.remaining)).group_by(Lot.member_id)).all())
    for m in session.execute(select(Member)).scalars():
        if m.balance < 0 or m.debt < 0:
            problems.append(f"member {m.id} negative balance {m.balance} or debt {m.debt}")
        if int(lines.get(m.id, 0)) != m.balance:
            problems.append(f"member {m.id} balance {m.balance} != lines {lines.get(m.id, 0)}")
        if int(lots.get(m.id, 0)) != m.balance:
            problems.append(f"member {m.id} balance {m.balance} != lots {lots.get(m.id, 0)}")
        if -int(debts.get(m.id, 0)) != m.debt:
            problems.append(f"member {m.id} debt {m.debt} != debt lines {debts.get(m.id, 0)}")
    return problems


def activation_view(a: Activation, offer: Offer) -> dict[str, Any]:
    return {
        "activation_id": a.id,
        "offer_id": a.offer_id,
        "customer_id": a.member_id,
        "decision_id": a.decision_id,
        "kind": offer.kind,
        "multiplier": float(offer.multiplier),
        "activated_at": a.activated_at.isoformat(),
        "expires_at": a.expires_at.isoformat(),
        "completed_at": a.completed_at.isoformat() if a.completed_at else None,
    }
