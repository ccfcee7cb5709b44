"""Schemathesis over the service's own OpenAPI document: no 5xx, no response that breaks its schema.

The app runs with its lifespan (engine, batcher, models) on its own migrated SQLite database, and every
generated request carries the admin key, so the fuzzing reaches the handlers instead of stopping at
authentication. The schema is loaded at import (schemathesis parametrises at collection time), so the app
and its database are module-level here rather than fixtures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from loyalty_core.config import Settings
from loyalty_core.db import make_engine, migrate
from serving.app import create_app
from tests.serving.conftest import API_KEYS, KEYS

_DB = Path(tempfile.mkdtemp(prefix="loyalty-fuzz-")) / "fuzz.db"
APP = create_app(Settings(database_url=f"sqlite:///{_DB}", api_keys=API_KEYS, max_body_bytes=16 * 1024))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.auth()
class AdminKey:
    """Schemathesis' own auth hook, so its auth checks know which requests carry a key and which do not."""

    def get(self, case: Any, context: Any) -> str:
        return KEYS["admin"]

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@pytest.fixture(scope="module", autouse=True)
def _running_app() -> Iterator[None]:
    engine = make_engine(f"sqlite:///{_DB}")
    migrate(engine)
    engine.dispose()
    with TestClient(APP):  # runs the lifespan: app.state holds the engine and batcher while the cases run
        yield


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    # Every default check but one: a schema-valid body may still break a business rule (a currency the rules
    # do not accept, a decision that does not exist), which is a documented 4xx, not a contract violation.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
