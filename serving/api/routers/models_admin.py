"""Model operations: reload the champions now, and judge the shadow policy before promoting it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from loyalty_core import shadow_pairs
from serving.api.deps import AdminCaller, ScoringDep
from serving.api.schemas.admin import ReloadOut, ShadowOut
from serving.api.schemas.fields import Timestamp
from serving.runtime.shadow import shadow_report

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/models/reload", response_model=ReloadOut)
async def reload_models(caller: AdminCaller, scoring: ScoringDep) -> dict[str, Any]:
    """Load the champions, the online features and the catalogue afresh in this worker.

    Requests keep being answered meanwhile, by the versions loaded so far; each switches to the new ones
    whole. A failed load keeps the previous version serving and reports the error here and in ``/health``.
    Other worker processes pick changes up at their next poll (``LOYALTY_MODEL_POLL_SECONDS``).
    """
    statuses = await asyncio.to_thread(scoring.reload)
    return {"status": "ok" if scoring.healthy() else "degraded", "models": statuses}


@router.get("/shadow", response_model=ShadowOut)
async def shadow(
    caller: AdminCaller,
    scoring: ScoringDep,
    since: Annotated[
        Timestamp | None, Query(description="Only decisions made at or after this time.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1_000_000, description="The latest decisions to read at most.")
    ] = 100_000,
) -> dict[str, Any]:
    """The challenger beside the champion: agreement rate and off-policy estimates (IPS, SNIPS, DR)."""

    def read() -> dict[str, Any]:
        with Session(scoring.reader) as session:
            shadows, served, events = shadow_pairs(session, since=since, limit=limit)
        return shadow_report(
            shadows,
            served,
            events,
            scoring.catalogue_frame(),
            champion=scoring.exploration.name,
            challenger=None if scoring.shadow is None else f"shadow:{scoring.shadow.name}",
        )

    return await asyncio.to_thread(read)
