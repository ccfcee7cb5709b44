"""The decision log and the feedback that joins back to it.

Every choice the service makes is stored with the probability it had of being made, and every later event
(shown, viewed, accepted, completed; activations and completions from the ledger) carries the decision id,
so the next training run and any off-policy evaluation read what was decided next to what happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from loyalty_core.errors import InvalidInput, NotFound
from loyalty_core.journal import OFFER_EVENTS, check_id, dialect_insert, utcnow
from loyalty_core.schema import Decision

DECISIONS = cast(Table, Decision.__table__)
FEEDBACK_EVENTS = ("shown", "viewed", "accepted", "completed")


def record_decisions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert decisions (``id, customer_id, made_at, policy, offer_id, probability, served, ...``) at once."""
    for row in rows:
        p = row["probability"]
        if not 0.0 <= float(p) <= 1.0:
            raise InvalidInput(f"decision {row['id']}: probability {p} is not in [0, 1]", field="probability")
    if rows:
        session.execute(insert(DECISIONS), list(rows))


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
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"unknown decision {decision_id!r}", code="unknown_decision")
    offered = {o.get("offer_id") for o in decision.offers or ()} | {decision.offer_id}
    if offer_id not in offered:
        raise InvalidInput(
            f"offer {offer_id!r} was not part of decision {decision_id!r}",
            field="offer_id",
            code="not_offered",
        )
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
