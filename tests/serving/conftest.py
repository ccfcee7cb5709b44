"""App clients for the serving tests: the real app, lifespan included, on a fresh database with known keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loyalty_core.config import Settings
from serving.app import create_app

KEYS = {"core": "test-core-key", "marketing": "test-marketing-key", "admin": "test-admin-key"}
API_KEYS = ",".join(f"{scope}:{key}" for scope, key in KEYS.items())


def _client_for(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, api_keys=API_KEYS, max_body_bytes=16 * 1024))
    with TestClient(app) as client:  # as a context manager, so the lifespan (engine, batcher) runs
        yield client


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """The service on this test's own SQLite database."""
    yield from _client_for(engine)


@pytest.fixture
def pg_client(pg_engine: Engine) -> Iterator[TestClient]:
    """The service on the (emptied) PostgreSQL test database."""
    yield from _client_for(pg_engine)


@pytest.fixture
def auth() -> dict[str, dict[str, str]]:
    """Request headers per scope: ``client.get(..., headers=auth["core"])``."""
    return {scope: {"X-API-Key": key} for scope, key in KEYS.items()}
