"""Reviews of postings the fraud checks held: release credits the points, reject confirms they never come."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from loyalty_core import reversals
from serving.contract import write
from serving.deps import AdminCaller, EngineDep, RulesDep
from serving.schemas import ReviewOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])

TransactionId = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/postings/{transaction_id}/release", response_model=ReviewOut)
def release_posting(
    caller: AdminCaller, transaction_id: TransactionId, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Credit a held posting's points as of now; 409 ``not_held`` for a posting that was never held."""
    return write(
        engine,
        response,
        lambda s: reversals.review_held(
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
        lambda s: reversals.review_held(
            s, transaction_id=transaction_id, approve=False, rules=rules, actor=caller.actor
        ),
    )
