"""Prometheus instruments and the middleware that feeds them.

``loyalty serve`` runs several worker processes, each with its own counters; a scrape lands on one of them.
With ``PROMETHEUS_MULTIPROC_DIR`` set before the workers start, prometheus_client keeps every process's
values in memory-mapped files in that folder and ``/metrics`` adds them up, so a scrape sees the service,
not one worker. ``prepare_multiprocess_dir`` sets that up for the command line.

Labels are route templates (``/v1/customers/{customer_id}``), never raw paths: one series per customer would
exhaust Prometheus and put customer ids in the monitoring system.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client chose its value storage when it was imported (just above), from this same variable.
_MULTIPROCESS = bool(os.environ.get(ENV))

REQUESTS = Counter("loyalty_http_requests", "HTTP requests answered.", ["method", "route", "status"])
LATENCY = Histogram(
    "loyalty_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POSTINGS = Counter("loyalty_postings", "Transactions posted through the API, by outcome.", ["status"])
POSTING_BATCH_SIZE = Histogram(
    "loyalty_posting_batch_size",
    "Postings committed together by the group-commit batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

INFERENCE_BATCH_SIZE = Histogram(
    "loyalty_inference_batch_size",
    "Customers scored together in one model call by the inference batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
DECISION_BATCH_SIZE = Histogram(
    "loyalty_decision_batch_size",
    "Decision rows committed together by the decision writer.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)


def render() -> tuple[bytes, str]:
    """The exposition text, summed over every worker process when running in multiprocess mode."""
    if _MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """Before starting ``workers`` processes: give them an empty shared metrics folder; None for one worker.

    Call it before uvicorn starts (and before anything imports ``serving.app``); remove the returned folder
    when the server exits if the variable was not set by the user. A folder left over from an earlier run
    would add its old counts to the new ones, so its files are deleted.
    """
    if workers <= 1 and not os.environ.get(ENV):
        return None
    existing = os.environ.get(ENV)
    if existing:
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="loyalty-metrics-"))
    os.environ[ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path | None) -> None:
    if path is not None and path.name.startswith("loyalty-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


class MetricsMiddleware:
    """Count and time every HTTP request by method, route template and status (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = (scope["method"], route, str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - start)
