"""Schemathesis over the service's own OpenAPI document: no 5xx, no response that breaks its schema.

Twice: on an empty database with an empty model registry (the scoring routes' only 5xx allowed is their
documented 503 ``model_unavailable``), and on a copy of the simulated world with its champions loaded
(no 5xx at all). Each app runs with its lifespan (engine, batchers, models), and every generated request
carries the admin key, so the fuzzing reaches the handlers instead of stopping at authentication. The schema
is loaded at import (schemathesis parametrises at collection time), so the empty app and its database are
module-level here rather than fixtures.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from loyalty_core.config import Settings
from loyalty_core.db import make_engine, migrate
from serving.app import create_app
from tests.serving.conftest import API_KEYS, KEYS, NO_MULTIPLIER_RULE, World, use_mlflow_store

_DB = Path(tempfile.mkdtemp(prefix="loyalty-fuzz-")) / "fuzz.db"
APP = create_app(
    Settings(
        database_url=f"sqlite:///{_DB}",
        api_keys=API_KEYS,
        max_body_bytes=16 * 1024,
        multiplier_file=NO_MULTIPLIER_RULE,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# A body over the size limit is refused with 413 before it is parsed: a rejection as good as a 422 (a full
# /v1/score batch of 1000 maximal ids is larger than this test's 16 KiB limit).
_rejections = schema.config.checks.negative_data_rejection
_rejections.expected_statuses = [*_rejections.expected_statuses, "413"]


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


SCORING_ROUTES = {"/v1/score", "/v1/offers/rank", "/v1/campaigns"}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def no_server_error_but_missing_models(ctx: Any, response: Any, case: Any) -> bool | None:
    """As ``not_a_server_error``, except a scoring route's documented 503 while no model is loaded."""
    if response.status_code == 503 and case.operation.path in SCORING_ROUTES:
        assert response.json()["error"]["code"] == "model_unavailable", response.text
        return None
    return not_a_server_error(ctx, response, case)


@pytest.fixture(scope="module")
def loaded_app(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The service on a copy of the simulated world, its champions loaded."""
    path = tmp_path_factory.mktemp("fuzz-world") / "loyalty.db"
    shutil.copyfile(world.db, path)
    app = create_app(
        Settings(
            database_url=f"sqlite:///{path}",
            api_keys=API_KEYS,
            max_body_bytes=16 * 1024,
            model_poll_seconds=0,
            multiplier_file=world.multiplier,
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        use_mlflow_store(mp, world.mlflow_uri)
        with TestClient(app):
            assert app.state.scoring.healthy(), app.state.scoring.status()
            yield app


# Every default check but one: a schema-valid body may still break a business rule (a currency the rules
# do not accept, a decision that does not exist), which is a documented 4xx, not a contract violation.


@schema.parametrize()
@SETTINGS
def test_without_models_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate(
        excluded_checks=[positive_data_acceptance, not_a_server_error],
        additional_checks=[no_server_error_but_missing_models],
    )


@schema.parametrize()
@SETTINGS
def test_with_models_no_server_errors_and_responses_match_the_schema(case: Any, loaded_app: Any) -> None:
    case.call_and_validate(app=loaded_app, excluded_checks=[positive_data_acceptance])
