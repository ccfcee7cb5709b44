"""Unauthenticated probes: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy import text

from serving import metrics
from serving.deps import EngineDep, ScoringDep
from serving.schemas import HealthOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthOut)
def health(engine: EngineDep, scoring: ScoringDep) -> HealthOut:
    """``degraded`` (still 200) when the database does not answer or a model, the online features or the
    catalogue is not loaded (``models`` says which, its version and error): the probe reports, never crashes.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        log.warning("health: database check failed: %s", type(exc).__name__)
        database = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    ok = database == "ok" and scoring.healthy()
    return HealthOut(status="ok" if ok else "degraded", database=database, models=scoring.status())


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics() -> Response:
    """Prometheus exposition text, summed over all worker processes."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
