"""Decisions: offer rankings for one customer, campaign targeting for one offer, and feedback on both.

Every ranking and every targeted customer is logged in ``decisions`` with the probability the policy had of
choosing it and the versions of everything that produced it, before the answer goes out; feedback and
activations carry the ``decision_id`` back, so outcomes join to decisions for training and off-policy
evaluation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from loyalty_core import in_transaction, record_feedback, utcnow
from serving.api.contract import REPLAYED_HEADER, ExactJSONRoute
from serving.api.deps import EngineDep, MarketingCaller, ReaderCaller, ServicesDep
from serving.api.schemas.offer_decisions import (
    CampaignBody,
    CampaignOut,
    FeedbackBody,
    FeedbackOut,
    RankBody,
    RankOut,
)
from serving.runtime.ranking import plan_campaign, rank_customer

router = APIRouter(prefix="/v1", tags=["decisions"], route_class=ExactJSONRoute)


@router.post("/offers/rank", response_model=RankOut)
async def rank_offers(caller: MarketingCaller, body: RankBody, services: ServicesDep) -> dict[str, Any]:
    """Choose up to ``k`` offers for a customer by expected incremental value, with a little exploration.

    Only eligible offers are candidates: active, available in ``channel``, open to the customer's tier, not
    already running for them, and within the frequency caps (per offer, per channel, per customer over 30
    days). Each offer comes with the probability the policy had of choosing it; the decision is logged
    (and, in shadow mode, the challenger's choice beside it) before the answer is sent. An empty ``offers``
    list is a decision too: nothing was worth showing or allowed.
    """
    scoring = services.scoring
    snap = scoring.snapshot(churn=False, offers=True)
    now = utcnow()
    customer = await services.facts.read(body.customer_id)
    row, known = snap.features.value.vector(body.customer_id)
    scores = await services.inference.score(snap, row.reshape(1, -1), churn=False)
    answer, rows = rank_customer(
        scoring,
        snap,
        customer,
        customer_id=body.customer_id,
        scores=scores,
        known=known,
        k=body.k,
        channel=body.channel,
        now=now,
    )
    await services.writer.write(rows)
    return answer


@router.post("/campaigns", response_model=CampaignOut)
async def plan_campaign_route(
    caller: MarketingCaller, body: CampaignBody, services: ServicesDep
) -> dict[str, Any]:
    """Rank every customer with online features for one offer; keep the best within budget and limit.

    Customers the offer may not go to (tier, running activation, frequency caps in ``channel``) and those
    with no positive expected value are left out; the rest are taken best first while the expected cost
    (completion probability x the offer's cost) stays within ``budget``. Each targeted customer is logged as
    a decision of policy ``campaign:<campaign_id>`` (probability 1: the plan is deterministic), so sends,
    activations and feedback join back to it.
    """
    snap = services.scoring.snapshot(churn=False, offers=True)
    answer, rows = await run_in_threadpool(
        partial(
            plan_campaign,
            services.scoring,
            snap,
            offer_id=body.offer_id,
            budget=None if body.budget is None else float(body.budget),
            limit=body.limit,
            channel=body.channel,
            rank_by=body.rank_by,
            now=utcnow(),
        )
    )
    await services.writer.write(rows)
    return answer


@router.post("/feedback", response_model=FeedbackOut)
def feedback(
    caller: ReaderCaller, body: FeedbackBody, engine: EngineDep, response: Response
) -> dict[str, Any]:
    """Join an event (shown, viewed, accepted, completed) back to its decision; repeats change nothing.

    A repeat answers ``replayed: true`` with the header ``Idempotent-Replayed: true``, like every replay.
    """
    answer = in_transaction(
        engine,
        lambda s: record_feedback(s, decision_id=body.decision_id, offer_id=body.offer_id, event=body.event),
    )
    if answer["replayed"]:
        response.headers[REPLAYED_HEADER] = "true"
    return answer
