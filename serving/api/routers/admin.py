"""Reviews of what the fraud checks held: postings (release credits the points, reject confirms they never
come) and redemptions (release spends the reserved points, reject frees them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from loyalty_core import review_held, review_held_redemption
from serving.api.contract import write
from serving.api.deps import AdminCaller, EngineDep, RulesDep
from serving.api.schemas.admin import RedemptionReviewOut, ReviewOut
from serving.api.schemas.fields import ExtId

router = APIRouter(prefix="/v1/admin", tags=["admin"])

TransactionId = Annotated[ExtId, Path()]
RedemptionId = Annotated[ExtId, Path()]


@router.post("/postings/{transaction_id}/release", response_model=ReviewOut)
def release_posting(
    caller: AdminCaller, transaction_id: TransactionId, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Credit a held posting's points as of now; 409 ``not_held`` for a posting that was never held."""
    return write(
        engine,
        response,
        lambda s: review_held(
            s, transaction_id=transaction_id, approve=True, rules=rules, actor=caller.actor
        ),
    )


@router.post("/postings/{transaction_id}/reject", response_model=ReviewOut)
def reject_posting(
    caller: AdminCaller, transaction_id: TransactionId, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Confirm that a held posting earns nothing; it stays in the journal as rejected."""
    return write(
        engine,
        response,
        lambda s: review_held(
            s, transaction_id=transaction_id, approve=False, rules=rules, actor=caller.actor
        ),
    )


@router.post("/redemptions/{redemption_id}/release", response_model=RedemptionReviewOut)
def release_redemption(
    caller: AdminCaller, redemption_id: RedemptionId, engine: EngineDep, response: Response
) -> dict[str, Any]:
    """Spend a held redemption's reserved points now; 409 ``not_held`` for one that was never held."""
    return write(
        engine,
        response,
        lambda s: review_held_redemption(s, redemption_id=redemption_id, approve=True, actor=caller.actor),
    )


@router.post("/redemptions/{redemption_id}/reject", response_model=RedemptionReviewOut)
def reject_redemption(
    caller: AdminCaller, redemption_id: RedemptionId, engine: EngineDep, response: Response
) -> dict[str, Any]:
    """Refuse a held redemption: its reserved points become available again."""
    return write(
        engine,
        response,
        lambda s: review_held_redemption(s, redemption_id=redemption_id, approve=False, actor=caller.actor),
    )
