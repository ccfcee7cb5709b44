"""Points: postings, reversals, redemptions, holds, activities and what a customer holds.

Postings go through the group-commit batcher (they are the bulk of the traffic); everything else is a plain
``def`` endpoint running one ``loyalty_core.in_transaction`` call (through ``contract.write``, which marks
replayed answers), whose retries settle the races between concurrent requests for the same customer. Every
call records the caller's scope as the ledger actor.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

import loyalty_core
from loyalty_core import LoyaltyError, TransactionIn, balance_as_of, customer_view, reverse
from serving.api.contract import ExactJSONRoute, write
from serving.api.deps import BatcherDep, CoreCaller, EngineDep, ReaderCaller, RulesDep, SessionDep
from serving.api.schemas.fields import CustomerId, ExtId, Timestamp
from serving.api.schemas.points import (
    ActivityBody,
    ActivityOut,
    BalanceOut,
    CustomerOut,
    HoldBody,
    HoldOut,
    PostingOut,
    RedemptionBody,
    RedemptionOut,
    ReversalBody,
    ReversalOut,
    TransactionBody,
)
from serving.runtime import metrics

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["ledger"], route_class=ExactJSONRoute)

TransactionId = Annotated[ExtId, Path()]
HoldId = Annotated[ExtId, Path()]
CustomerIdPath = Annotated[CustomerId, Path()]


@router.post("/transactions", response_model=PostingOut)
async def post_transaction(
    caller: CoreCaller, body: TransactionBody, batcher: BatcherDep, response: Response
) -> dict[str, Any]:
    """Earn points for one bank transaction; a replay of the same body answers the first result again.

    A posting that trips a fraud check is still a 200: it is recorded with status ``held`` and a reason, and
    an admin releases or rejects it later. The header ``Idempotent-Replayed: true`` marks a replayed answer.
    """
    txn = TransactionIn(
        transaction_id=body.transaction_id,
        customer_id=body.customer_id,
        type=body.type,
        amount=body.amount,
        occurred_at=body.occurred_at,
        category=body.category,
        channel=body.channel,
        currency=body.currency,
    )
    try:
        result = await batcher.submit(txn, actor=caller.actor)
    except LoyaltyError:
        metrics.POSTINGS.labels("rejected").inc()
        raise
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        metrics.POSTINGS.labels("replayed").inc()
    else:
        metrics.POSTINGS.labels(str(result.response.get("status", "posted"))).inc()
    return result.response


@router.post("/transactions/{transaction_id}/reversal", response_model=ReversalOut)
def reverse_transaction(
    caller: CoreCaller,
    transaction_id: TransactionId,
    body: ReversalBody,
    engine: EngineDep,
    rules: RulesDep,
    response: Response,
) -> dict[str, Any]:
    """Claw back a refunded transaction's points, all or in proportion; what was spent becomes debt."""
    return write(
        engine,
        response,
        lambda s: reverse(
            s,
            transaction_id=transaction_id,
            reversal_id=body.reversal_id,
            amount=body.amount,
            rules=rules,
            actor=caller.actor,
        ),
    )


@router.post("/redemptions", response_model=RedemptionOut)
def redeem(
    caller: CoreCaller, body: RedemptionBody, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Spend points now (earliest-expiring first); 409 ``insufficient_points`` when the balance is short."""
    return write(
        engine,
        response,
        lambda s: loyalty_core.redeem(
            s,
            redemption_id=body.redemption_id,
            customer_id=body.customer_id,
            points=body.points,
            reward=body.reward,
            rules=rules,
            actor=caller.actor,
        ),
    )


@router.post("/activities", response_model=ActivityOut)
def award_activity(
    caller: CoreCaller, body: ActivityBody, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Points for a social action, referral or survey; once per ``activity_id``."""
    return write(
        engine,
        response,
        lambda s: loyalty_core.award_activity(
            s,
            activity_id=body.activity_id,
            customer_id=body.customer_id,
            kind=body.kind,
            rules=rules,
            actor=caller.actor,
        ),
    )


@router.post("/holds", response_model=HoldOut)
def create_hold(
    caller: CoreCaller, body: HoldBody, engine: EngineDep, rules: RulesDep, response: Response
) -> dict[str, Any]:
    """Reserve points at a till until captured or voided; an uncaptured hold lapses after its timeout."""
    return write(
        engine,
        response,
        lambda s: loyalty_core.create_hold(
            s,
            hold_id=body.hold_id,
            customer_id=body.customer_id,
            points=body.points,
            reward=body.reward,
            timeout_seconds=body.timeout_seconds,
            rules=rules,
            actor=caller.actor,
        ),
    )


@router.post("/holds/{hold_id}/capture", response_model=HoldOut)
def capture_hold(
    caller: CoreCaller, hold_id: HoldId, engine: EngineDep, response: Response
) -> dict[str, Any]:
    """Spend the held points; 409 ``hold_not_active`` once the hold was voided or timed out."""
    return write(
        engine, response, lambda s: loyalty_core.capture_hold(s, hold_id=hold_id, actor=caller.actor)
    )


@router.post("/holds/{hold_id}/void", response_model=HoldOut)
def void_hold(caller: CoreCaller, hold_id: HoldId, engine: EngineDep, response: Response) -> dict[str, Any]:
    """Give the held points back to the customer's available balance."""
    return write(engine, response, lambda s: loyalty_core.void_hold(s, hold_id=hold_id, actor=caller.actor))


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(
    caller: ReaderCaller, customer_id: CustomerIdPath, session: SessionDep, rules: RulesDep
) -> dict[str, Any]:
    """Balance, tier, points about to expire and active offers."""
    return customer_view(session, customer_id, rules=rules)


@router.get("/customers/{customer_id}/balance", response_model=BalanceOut)
def get_balance_as_of(
    caller: ReaderCaller,
    customer_id: CustomerIdPath,
    as_of: Annotated[Timestamp, Query(description="ISO 8601 timestamp with an offset.")],
    session: SessionDep,
) -> dict[str, Any]:
    """Points and debt as the journal stood at ``as_of`` (statements, audits, disputes)."""
    return balance_as_of(session, customer_id, as_of)
