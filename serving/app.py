"""The FastAPI application factory (``uvicorn serving.app:create_app --factory``).

A factory rather than a module-level app: tests build one per database with their own keys, and each worker
process of ``loyalty serve`` builds its own engine and batcher in the lifespan, after the fork, so no
connection or thread is ever shared between processes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loyalty_core.config import Settings, get_settings
from loyalty_core.db import make_engine
from loyalty_core.rules import load_rules
from serving.batcher import PostingBatcher
from serving.errors import ERROR_RESPONSES, BodyLimitMiddleware, install_error_handlers
from serving.metrics import MetricsMiddleware
from serving.routers import admin, decisions, health, ledger, offers
from serving.security import parse_api_keys

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Keys and rules first: a configuration mistake stops start-up before anything connects.
        app.state.api_keys = parse_api_keys(settings.api_keys)
        app.state.rules = load_rules(settings.rules)
        app.state.engine = engine = make_engine(settings.database_url)
        app.state.batcher = batcher = PostingBatcher(
            engine, app.state.rules, max_batch=settings.post_batch_max
        )
        await batcher.start()
        log.info("service ready (rules %s)", app.state.rules.version)
        try:
            yield
        finally:
            await batcher.stop()  # answers every posting already accepted before the engine goes
            engine.dispose()

    app = FastAPI(
        title="Loyalty platform",
        version="0.1.0",
        summary="Points ledger and personalised offers for a bank's loyalty programme.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added last = outermost: metrics also see the 413s the body limit sends.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    for router in (ledger.router, offers.router, decisions.router, admin.router):
        app.include_router(router, responses=ERROR_RESPONSES)
    return app
