"""Unauthenticated probes: health for load balancers, metrics for Prometheus."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, Security
from sqlalchemy import text

from serving.api.deps import EngineDep, ScoringDep
from serving.api.schemas.admin import HealthOut
from serving.api.security import ADMIN, ApiKeys, api_key_header
from serving.runtime import health_of, metrics, served_parts
from serving.runtime.redaction import describe_error

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

DATABASE_DOWN = "error: the database does not answer"
DETAILS_HIDDEN = "the last load failed; an admin key sees why"


async def _is_admin(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> bool:
    """Whether the caller presented an admin key. No key, or a wrong one, is no error here: the probe stays
    open to load balancers; they just read the state without the details."""
    if not key:
        return False
    keys: ApiKeys = request.app.state.api_keys
    granted = keys.scopes_of(key)
    return granted is not None and ADMIN in granted


# The key is optional here (an admin's key adds the details), which OpenAPI says as "no requirement, or
# the key": without it the document would claim that /health refuses anonymous callers, which it never does.
@router.get("/health", response_model=HealthOut, openapi_extra={"security": [{}, {"APIKeyHeader": []}]})
def health(engine: EngineDep, scoring: ScoringDep, admin: Annotated[bool, Security(_is_admin)]) -> HealthOut:
    """``degraded`` (still 200) when the database does not answer or a model, the online features or the
    catalogue is not loaded (``models`` says which and its version): the probe reports, never crashes.
    An optional part that does not exist (no uplift or offer champion: a bank that scores churn alone) is
    ``absent`` with the reason, not degraded; ``serves`` lists what the scoring routes answer.

    Why something failed (an error's text, with file paths, store addresses or SQL) is shown only to an
    admin key (``X-API-Key``); without one, each failure reads the same generic words.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        log.warning("health: database check failed: %s", type(exc).__name__)
        database = f"error: {describe_error(exc)[:300]}" if admin else DATABASE_DOWN
    models = scoring.status()
    ok = database == "ok" and health_of(models)
    serves = served_parts(models)
    if not admin:
        models = {name: _public(status) for name, status in models.items()}
    return HealthOut(status="ok" if ok else "degraded", database=database, models=models, serves=serves)


def _public(status: dict[str, Any]) -> dict[str, Any]:
    error = status.get("error")
    if error is None or status["status"] == "absent":  # absence of an optional model: a fixed sentence
        return status
    return {**status, "error": DETAILS_HIDDEN}


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics() -> Response:
    """Prometheus exposition text, summed over all worker processes."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
