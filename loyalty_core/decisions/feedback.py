"""Feedback that joins back to a decision: what the customer did with an offer the service proposed.

Every later event (shown, viewed, accepted, completed; activations and completions from the ledger) carries
the decision id, so outcomes join to decisions for training and off-policy evaluation. One joined to the
wrong decision would credit a policy with a choice it did not make, hence the checks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty_core.clock import utcnow
from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.schema import OFFER_EVENTS, Decision
from loyalty_core.sql import dialect_insert
from loyalty_core.validation import check_id

FEEDBACK_EVENTS = ("shown", "viewed", "accepted", "completed")


def offered_decision(
    session: Session, decision_id: str, offer_id: str, *, customer_id: str | None = None
) -> Decision:
    """The served decision that proposed ``offer_id`` (to ``customer_id``, when given), or why not.

    Outcomes (feedback, activations) join to decisions for training and off-policy evaluation; one joined to
    a decision that does not exist, was a shadow's, went to someone else or never proposed the offer would
    credit a policy with a choice it did not make.
    """
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"unknown decision {decision_id!r}", code="unknown_decision")
    if customer_id is not None and decision.customer_id != customer_id:
        raise Conflict(f"decision {decision_id!r} was made for another customer", code="decision_mismatch")
    if not decision.served:
        raise Conflict(
            f"decision {decision_id!r} was a shadow policy's, never served: no outcome can belong to it",
            code="not_served",
        )
    offered = {o.get("offer_id") for o in decision.offers or ()} | {decision.offer_id}
    if offer_id not in offered:
        raise InvalidInput(
            f"offer {offer_id!r} was not part of decision {decision_id!r}",
            field="offer_id",
            code="not_offered",
        )
    return decision


def record_feedback(
    session: Session,
    *,
    decision_id: str,
    offer_id: str,
    event: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Log what a customer did with an offer of a decision; sending the same event again changes nothing."""
    now = now or utcnow()
    check_id(decision_id, "decision_id")
    check_id(offer_id, "offer_id")
    if event not in FEEDBACK_EVENTS:
        raise InvalidInput(f"event must be one of {', '.join(FEEDBACK_EVENTS)}, got {event!r}", field="event")
    decision = offered_decision(session, decision_id, offer_id)
    ext_id = f"feedback:{decision_id}:{offer_id}:{event}"
    inserted = session.execute(
        dialect_insert(session, OFFER_EVENTS).on_conflict_do_nothing().returning(OFFER_EVENTS.c.id),
        {
            "ext_id": ext_id,
            "customer_id": decision.customer_id,
            "offer_id": offer_id,
            "event": event,
            "occurred_at": now,
            "channel": decision.channel,
            "decision_id": decision_id,
            "value": None,
        },
    ).first()
    first_at = session.scalar(select(OFFER_EVENTS.c.occurred_at).where(OFFER_EVENTS.c.ext_id == ext_id))
    return {
        "decision_id": decision_id,
        "offer_id": offer_id,
        "event": event,
        "customer_id": decision.customer_id,
        "recorded_at": first_at,
        "replayed": inserted is None,
    }
