"""The offers catalogue and customers' activations of offers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.journal import (
    OFFER_EVENTS,
    check_id,
    funnel_event,
    lock_one,
    utcnow,
)
from loyalty_core.rules import (
    Rules,
)
from loyalty_core.schema import Activation, Member, Offer
from loyalty_core.statements import activation_view, customer_tier

OFFER_KINDS = ("multiplier", "bonus_points", "cashback", "informational")


def list_offers(session: Session, *, active_only: bool = False) -> list[Offer]:
    """The catalogue in id order (withdrawn offers too, unless ``active_only``)."""
    q = select(Offer).order_by(Offer.id)
    if active_only:
        q = q.where(Offer.active.is_(True))
    return list(session.scalars(q))


def upsert_offer(session: Session, spec: dict[str, Any], *, now: dt.datetime | None = None) -> Offer:
    """Create or replace an offer of the catalogue (activations keep pointing at it by id)."""
    now = now or utcnow()
    oid = check_id(spec.get("id"), "id")
    kind = spec.get("kind")
    if kind not in OFFER_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(OFFER_KINDS)}, got {kind!r}", field="kind")
    duration = spec.get("duration_days")
    if not isinstance(duration, int) or not 1 <= duration <= 366:
        raise InvalidInput(
            "duration_days must be a whole number of days between 1 and 366", field="duration_days"
        )
    multiplier = Decimal(str(spec.get("multiplier", 1)))
    if kind == "multiplier" and not Decimal(1) <= multiplier <= Decimal(10):
        raise InvalidInput("multiplier must be between 1 and 10", field="multiplier")
    offer = session.get(Offer, oid) or Offer(id=oid, created_at=now)
    offer.name = str(spec.get("name") or oid)
    offer.kind = kind
    offer.multiplier = multiplier
    offer.bonus_points = int(spec.get("bonus_points", 0))
    offer.threshold = Decimal(str(spec["threshold"])) if spec.get("threshold") is not None else None
    offer.categories = spec.get("categories")
    offer.txn_types = spec.get("txn_types")
    offer.channels = spec.get("channels")
    offer.duration_days = duration
    offer.cost = Decimal(str(spec.get("cost", 0)))
    offer.value = Decimal(str(spec.get("value", 0)))
    offer.min_tier = spec.get("min_tier")
    offer.active = bool(spec.get("active", True))
    session.add(offer)
    session.flush()
    return offer


def activate_offer(
    session: Session,
    *,
    offer_id: str,
    customer_id: str,
    decision_id: str | None,
    rules: Rules,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Switch an offer on for a customer. Asking again while it is active returns the same activation."""
    now = now or utcnow()
    check_id(customer_id, "customer_id")
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"unknown offer {offer_id!r}", code="unknown_offer")
    if not offer.active:
        raise Conflict(f"offer {offer_id!r} is withdrawn", code="offer_inactive")
    m = lock_one(session, customer_id, create=True, now=now)
    if offer.min_tier is not None:
        names = [t.name for t in rules.tiers]
        tier = customer_tier(session, m.id, now, rules)
        if offer.min_tier in names and names.index(tier) < names.index(offer.min_tier):
            raise Conflict(
                f"offer {offer_id!r} needs tier {offer.min_tier}, customer is {tier}", code="not_eligible"
            )
    current = session.execute(
        select(Activation)
        .where(Activation.member_id == m.id, Activation.offer_id == offer_id, Activation.expires_at > now)
        .order_by(Activation.id.desc())
    ).scalar()
    if current is None:
        current = Activation(
            ext_id=f"{offer_id}:{m.id}:{now.isoformat()}",
            offer_id=offer_id,
            member_id=m.id,
            decision_id=decision_id,
            activated_at=now,
            expires_at=now + dt.timedelta(days=offer.duration_days),
        )
        session.add(current)
        session.flush()
        session.execute(
            insert(OFFER_EVENTS),
            funnel_event(current.id, "activated", m.id, offer_id, now, decision_id),
        )
        if m.offers_until is None or current.expires_at > m.offers_until:
            # Postings skip the activation lookup for members whose latest activation has expired.
            session.execute(update(Member).where(Member.id == m.id).values(offers_until=current.expires_at))
    return activation_view(current, offer)
