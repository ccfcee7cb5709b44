"""The offers catalogue and customers' activations of offers."""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.clock import utcnow
from loyalty_core.decisions import offered_decision
from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.idempotency import mark_replayed
from loyalty_core.locks import lock_one
from loyalty_core.members import MemberState
from loyalty_core.rules import (
    Rules,
)
from loyalty_core.schema import MEMBERS, OFFER_EVENTS, Activation, Offer
from loyalty_core.statements import activation_view, customer_tier
from loyalty_core.validation import check_id
from loyalty_core.vocabulary import OFFER_KINDS

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def list_offers(session: Session, *, active_only: bool = False) -> list[Offer]:
    """The catalogue in id order (withdrawn offers too, unless ``active_only``)."""
    q = select(Offer).order_by(Offer.id)
    if active_only:
        q = q.where(Offer.active.is_(True))
    return list(session.scalars(q))


def _text(spec: dict[str, Any], name: str, max_len: int) -> str | None:
    """An optional text field of an offer that fits its column and any backend (no NUL)."""
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidInput(f"{name} must be a string of at most {max_len} characters", field=name)
    if (problem := bounds.text_problem(value)) is not None:
        raise InvalidInput(f"{name} {problem}", field=name)
    return value


def _labels(spec: dict[str, Any], name: str, max_len: int) -> list[str] | None:
    values = spec.get(name)
    if values is None:
        return None
    if not isinstance(values, list | tuple):
        raise InvalidInput(f"{name} must be a list of strings", field=name)
    return [v for v in (_text({name: v}, name, max_len) for v in values) if v is not None]


def _money(spec: dict[str, Any], name: str, default: Decimal | None) -> Decimal | None:
    value = spec.get(name)
    if value is None:
        return default
    try:
        amount = bounds.parse_money(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} {exc}", field=name) from None
    if not 0 <= amount <= bounds.MAX_AMOUNT:
        raise InvalidInput(f"{name} must be between 0 and {bounds.MAX_AMOUNT}", field=name)
    return amount


def upsert_offer(
    session: Session, spec: dict[str, Any], *, now: dt.datetime | None = None, rules: Rules | None = None
) -> Offer:
    """Create or replace an offer of the catalogue (activations keep pointing at it by id).

    Every field is checked against its column (``bounds``), whoever calls: the API and the importers.
    With ``rules``, ``min_tier`` must be one of their tiers: an unknown tier matches no member's tier, and
    eligibility would then treat the offer as open to everyone.
    """
    now = now or utcnow()
    oid = check_id(spec.get("id"), "id", bounds.OFFER_ID_LEN)
    kind = spec.get("kind")
    if kind not in OFFER_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(OFFER_KINDS)}, got {kind!r}", field="kind")
    duration = spec.get("duration_days")
    if isinstance(duration, bool) or not isinstance(duration, int):
        duration = None
    if duration is None or not 1 <= duration <= bounds.DURATION_DAYS_MAX:
        raise InvalidInput(
            f"duration_days must be a whole number of days between 1 and {bounds.DURATION_DAYS_MAX}",
            field="duration_days",
        )
    try:
        multiplier = bounds.parse_decimal(
            spec.get("multiplier", 1), pattern=bounds.MULTIPLIER_PATTERN, places=bounds.MULTIPLIER_PLACES
        )
    except ValueError as exc:
        raise InvalidInput(f"multiplier {exc}", field="multiplier") from None
    if not Decimal(1) <= multiplier <= bounds.MULTIPLIER_MAX:
        raise InvalidInput(f"multiplier must be between 1 and {bounds.MULTIPLIER_MAX}", field="multiplier")
    bonus = spec.get("bonus_points", 0)
    if isinstance(bonus, numbers.Integral) and not isinstance(bonus, bool):
        bonus = int(bonus)  # numpy's integers too (importers read frames)
    if not isinstance(bonus, int) or not 0 <= bonus <= bounds.BONUS_POINTS_MAX:
        raise InvalidInput(
            f"bonus_points must be a whole number from 0 to {bounds.BONUS_POINTS_MAX}", field="bonus_points"
        )
    min_tier = _text(spec, "min_tier", bounds.TIER_LEN)
    if rules is not None and min_tier is not None:
        tiers = [t.name for t in rules.tiers]
        if min_tier not in tiers:
            raise InvalidInput(
                f"min_tier must be one of the rules' tiers ({', '.join(tiers)}), got {min_tier!r}",
                field="min_tier",
                code="unknown_tier",
            )
    name = _text(spec, "name", bounds.OFFER_NAME_LEN)
    offer = session.get(Offer, oid) or Offer(id=oid, created_at=now)
    offer.name = name or oid
    offer.kind = kind
    offer.multiplier = multiplier
    offer.bonus_points = bonus
    offer.threshold = _money(spec, "threshold", None)
    offer.categories = _labels(spec, "categories", bounds.CATEGORY_LEN)
    offer.txn_types = _labels(spec, "txn_types", bounds.CATEGORY_LEN)
    offer.channels = _labels(spec, "channels", bounds.CHANNEL_LEN)
    offer.duration_days = duration
    offer.cost = _money(spec, "cost", Decimal(0)) or Decimal(0)
    offer.value = _money(spec, "value", Decimal(0)) or Decimal(0)
    offer.min_tier = min_tier
    offer.active = bool(spec.get("active", True))
    session.add(offer)
    session.flush()
    return offer


def activation_ext_id(offer_id: str, member_id: str, at: dt.datetime) -> str:
    """The activation's unique key, with the instant in microseconds since 1970 (16 digits, where an ISO
    timestamp takes 32), so that the longest offer and customer ids still fit ``activations.ext_id``."""
    return f"{offer_id}:{member_id}:{(at - EPOCH) // dt.timedelta(microseconds=1)}"


def activate_offer(
    session: Session,
    *,
    offer_id: str,
    customer_id: str,
    decision_id: str | None,
    rules: Rules,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Switch an offer on for a customer. Asking again while it is active returns the same activation.

    A ``decision_id`` must be a served decision of this customer that proposed this offer (see
    ``decisions.offered_decision``): the activation's funnel event joins it in the decision log.
    """
    now = now or utcnow()
    check_id(customer_id, "customer_id")
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"unknown offer {offer_id!r}", code="unknown_offer")
    if decision_id is not None:
        check_id(decision_id, "decision_id", bounds.DECISION_ID_LEN)
        offered_decision(session, decision_id, offer_id, customer_id=customer_id)
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
    if current is not None:
        mark_replayed(session)
    else:
        current = Activation(
            ext_id=activation_ext_id(offer_id, m.id, now),
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
        raise_offers_until(session, {m.id: m}, {m.id: current.expires_at})
    return activation_view(current, offer)


def raise_offers_until(
    session: Session, members: Mapping[str, MemberState], until: Mapping[str, dt.datetime]
) -> None:
    """Raise locked members' ``offers_until`` to their latest activation's expiry, never lower it.

    Postings look activations up only for members whose ``offers_until`` is still ahead of them, so every
    activation, live or imported, must raise it in the transaction that records it.
    """
    raise_to = [
        {"mid": mid, "until": at}
        for mid, at in sorted(until.items())
        if (current := members[mid].offers_until) is None or current < at
    ]
    if raise_to:
        session.execute(
            update(MEMBERS).where(MEMBERS.c.id == bindparam("mid")).values(offers_until=bindparam("until")),
            raise_to,
        )


def funnel_event(
    activation_id: int,
    event: str,
    customer_id: str,
    offer_id: str,
    at: dt.datetime,
    decision_id: str | None,
) -> dict[str, Any]:
    """An ``offer_events`` row the ledger writes itself (activated, completed), keyed by the activation.

    The ledger decides activations and completions, so it records them in the offer funnel too: features and
    the next training run then see live outcomes exactly like imported ones, and a replay adds nothing.
    """
    return {
        "ext_id": f"activation:{activation_id}:{event}",
        "customer_id": customer_id,
        "offer_id": offer_id,
        "event": event,
        "occurred_at": at,
        "channel": None,
        "decision_id": decision_id,
        "value": None,
    }
