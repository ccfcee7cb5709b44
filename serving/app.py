"""The FastAPI application factory (``uvicorn serving.app:create_app --factory``).

A factory rather than a module-level app: tests build one per database with their own keys, and each worker
process of ``loyalty serve`` builds its own engine and batcher in the lifespan, after the fork, so no
connection or thread is ever shared between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from loyalty_core import Settings, get_settings, load_rules, make_engine
from serving.api.apidocs import install_docs
from serving.api.deps import Services
from serving.api.http_errors import (
    ERROR_RESPONSES,
    BodyLimitMiddleware,
    UnexpectedErrorMiddleware,
    install_error_handlers,
)
from serving.api.routers import admin, health, models_admin, offer_decisions, offers, points, scores
from serving.api.security import parse_api_keys
from serving.runtime.batcher import PostingBatcher
from serving.runtime.decision_writer import DecisionWriter
from serving.runtime.facts import FactsReader
from serving.runtime.inference import InferenceBatcher
from serving.runtime.metrics import MetricsMiddleware
from serving.runtime.served_state import ScoringState

if TYPE_CHECKING:  # older FastAPI releases have no telemetry and take the argument as an unused extra
    from fastapi.telemetry import TelemetryConfig

log = logging.getLogger(__name__)

# FastAPI's built-in OpenTelemetry instrumentation, switched off unless LOYALTY_OPENTELEMETRY asks for it:
# unconfigured, it looks up three global providers (reading the environment) on every request to find that
# nobody listens.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


async def _first_load(scoring: ScoringState, timeout: float) -> None:
    """Load the models before taking traffic, but never hang start-up on a slow registry: after ``timeout``
    the service starts degraded (scoring routes answer 503) while the load finishes in the background."""
    loading = asyncio.ensure_future(asyncio.to_thread(scoring.reload))
    try:
        await asyncio.wait_for(asyncio.shield(loading), timeout)  # each slot logs its own failure, once
    except TimeoutError:
        log.warning("models still loading after %.0f s: serving degraded until they are", timeout)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Keys and rules first: a configuration mistake stops start-up before anything connects.
        app.state.api_keys = parse_api_keys(settings.api_keys)
        app.state.rules = load_rules(settings.rules)
        app.state.engine = engine = make_engine(settings.database_url)
        app.state.batcher = batcher = PostingBatcher(
            engine,
            app.state.rules,
            max_batch=settings.post_batch_max,
            linger_ms=settings.post_batch_linger_ms,
            concurrency=settings.post_concurrency,
        )
        await batcher.start()
        writer = DecisionWriter(engine)
        await writer.start()
        app.state.scoring = scoring = ScoringState(engine, app.state.rules, settings)
        inference = InferenceBatcher()
        await inference.start()
        facts = FactsReader(scoring.reader, app.state.rules, scoring.caps)
        await facts.start()
        app.state.services = Services(scoring, inference, facts, writer)
        await _first_load(scoring, settings.model_load_timeout_seconds)
        # Everything loaded so far (frameworks, MLflow, models) lives as long as the process: keep it out
        # of the garbage collector's full passes, which otherwise scan it all (~200 ms with MLflow loaded)
        # and stall every request in flight.
        gc.collect()
        gc.freeze()
        poller = (
            asyncio.create_task(scoring.poll(), name="model-poll")
            if settings.model_poll_seconds > 0
            else None
        )
        log.info("service ready (rules %s)", app.state.rules.version)
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await facts.stop()
            await inference.stop()
            await writer.stop()  # writes every decision already made before the engine goes
            await batcher.stop()  # answers every posting already accepted before the engine goes
            if scoring.reader is not engine:
                scoring.reader.dispose()
            engine.dispose()

    app = FastAPI(
        title="Loyalty platform",
        version="0.1.0",
        summary="Points ledger and personalised offers for a bank's loyalty programme.",
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
        docs_url=None,  # FastAPI's pages load their assets from a CDN: install_docs serves our own copies
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added first = innermost: an unhandled error becomes a 500 the other middlewares see like any answer.
    app.add_middleware(UnexpectedErrorMiddleware)
    # Added last = outermost: metrics also see the 413s the body limit sends.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    # decisions before offers: for /v1/offers/rank, Starlette's first partial match (a method it lacks) must
    # be POST /v1/offers/rank, not PUT /v1/offers/{offer_id}, or a 405 would advertise the wrong methods.
    for router in (
        scores.router,  # routes are tried in order: the hot scoring route first
        points.router,
        offer_decisions.router,
        offers.router,
        admin.router,
        models_admin.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    install_docs(app)
    return app
