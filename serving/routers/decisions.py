"""Feedback on decisions: what customers did with the offers the service chose for them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loyalty_core import decisions, journal
from serving.deps import EngineDep, ReaderCaller
from serving.schemas import FeedbackBody, FeedbackOut

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post("/feedback", response_model=FeedbackOut)
def feedback(caller: ReaderCaller, body: FeedbackBody, engine: EngineDep) -> dict[str, Any]:
    """Join an event (shown, viewed, accepted, completed) back to its decision; repeats change nothing."""
    return journal.in_transaction(
        engine,
        lambda s: decisions.record_feedback(
            s, decision_id=body.decision_id, offer_id=body.offer_id, event=body.event
        ),
    )
