"""FastAPI's own OpenTelemetry instrumentation: off unless ``LOYALTY_OPENTELEMETRY`` asks for it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine

from loyalty_core import Settings
from serving.app import create_app
from tests.serving.conftest import API_KEYS, NO_MULTIPLIER_RULE


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """An operator's OpenTelemetry SDK, installed as the global tracer provider for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    return exporter


@pytest.mark.parametrize("enabled", [False, True])
def test_request_spans_only_when_asked_for(
    engine: Engine, spans: InMemorySpanExporter, enabled: bool
) -> None:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        api_keys=API_KEYS,
        multiplier_file=NO_MULTIPLIER_RULE,
        opentelemetry=enabled,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
    names = [span.name for span in spans.get_finished_spans()]
    if enabled:
        assert "GET /health" in names
    else:
        assert names == []
