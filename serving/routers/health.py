"""Unauthenticated probes: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from sqlalchemy import text

from serving import metrics
from serving.deps import EngineDep
from serving.schemas import HealthOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthOut)
def health(engine: EngineDep) -> HealthOut:
    """``degraded`` (still 200) when the database does not answer: the probe must report, never crash."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        log.warning("health: database check failed: %s", type(exc).__name__)
        database = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return HealthOut(status="ok" if database == "ok" else "degraded", database=database, models={})


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics() -> Response:
    """Prometheus exposition text, summed over all worker processes."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
