"""Scores for core banking: churn probability, bonus multiplier and offer propensities per customer."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serving.api.contract import ExactJSONRoute
from serving.api.deps import CoreCaller, ServicesDep
from serving.api.schemas.scores import ScoreBody, ScoreOut
from serving.runtime.inference import score_rows
from serving.runtime.ranking import customer_rows, score_answers

router = APIRouter(prefix="/v1", tags=["scoring"], route_class=ExactJSONRoute)

# Up to this many customers go through the worker's inference batcher with other requests' customers;
# larger requests are scored in a thread, so one big batch never stalls the small requests behind it.
INLINE_CUSTOMERS = 16


@router.post("/score", response_model=ScoreOut)
async def score(caller: CoreCaller, body: ScoreBody, services: ServicesDep) -> dict[str, Any]:
    """Score customers with the champion models, all in one model call per model.

    A customer without online features (e.g. enrolled after the last feature run) is scored from an
    all-missing vector and flagged ``known: false``. 503 ``model_unavailable`` when a model, the online
    features or the catalogue is not loaded (the message says which and why).

    Without an offer champion (a bank that only has transactions trains churn alone) the answer is churn
    and multipliers, every ``offers`` list empty and ``offers_absent`` saying why, instead of a 503: the
    contract's fields stay, and a caller can tell "no offer model" from "no offer worth showing".
    """
    snap = services.scoring.snapshot(churn=True, offers=False, offers_if_served=True)
    ids = body.customer_ids
    rows, known = customer_rows(snap, ids)
    if len(ids) <= INLINE_CUSTOMERS:
        scores = await services.inference.score(snap, rows, churn=True)
    else:
        scores = await run_in_threadpool(partial(score_rows, snap, rows, churn=True))
    return {
        "scores": score_answers(snap, ids, known, scores),
        "model_versions": snap.versions,
        "offers_absent": snap.offers_absent,
    }
