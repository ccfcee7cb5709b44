"""What the service lets out: no database values in logs, no error details to anonymous callers, no log line
per refused request, and a connection that survives a 500."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from loyalty_core import Settings, Unavailable
from serving.api.routers.health import DATABASE_DOWN, DETAILS_HIDDEN
from serving.app import create_app
from serving.runtime.slots import Slot
from tests.serving.conftest import API_KEYS, NO_MULTIPLIER_RULE, ThreadedServer

SECRET_ID = "cust-secret-4711"
SECRET_AMOUNT = 98765
Headers = dict[str, dict[str, str]]


def _app(engine: Engine) -> FastAPI:
    app = create_app(
        Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            api_keys=API_KEYS,
            multiplier_file=NO_MULTIPLIER_RULE,
            model_poll_seconds=0,
        )
    )

    @app.get("/boom")
    def boom() -> None:
        """A bug meeting the database: the same row twice, with a customer id and an amount bound."""
        with app.state.engine.begin() as conn:
            conn.execute(text("CREATE TEMPORARY TABLE leak (id VARCHAR(64) PRIMARY KEY, amount INTEGER)"))
            row = {"id": SECRET_ID, "amount": SECRET_AMOUNT}
            conn.execute(text("INSERT INTO leak (id, amount) VALUES (:id, :amount)"), row)
            conn.execute(text("INSERT INTO leak (id, amount) VALUES (:id, :amount)"), row)

    return app


def test_an_unhandled_database_error_logs_no_value_it_was_given(
    db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(_app(db_engine), raise_server_exceptions=False) as client:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            r = client.get("/boom")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    logged = caplog.text
    assert "unhandled error on GET /boom" in logged
    assert "IntegrityError" in logged  # what happened, and where, are still there...
    assert "INSERT INTO leak" in logged
    assert SECRET_ID not in logged  # ...but not the values: no "[parameters: ...]", no "DETAIL: Key (id)=..."
    assert str(SECRET_AMOUNT) not in logged
    assert SECRET_ID not in r.text


def test_health_shows_why_only_to_an_admin_key(engine: Engine, auth: Headers) -> None:
    with engine.begin() as conn:  # the online features cannot load: the error names a table, a statement
        conn.execute(text("DROP TABLE online_features"))
    with TestClient(_app(engine)) as client:
        anonymous = client.get("/health")
        wrong_key = client.get("/health", headers={"X-API-Key": "not-a-key"})
        marketing = client.get("/health", headers=auth["marketing"])
        admin = client.get("/health", headers=auth["admin"]).json()
        app: FastAPI = client.app  # type: ignore[assignment]
        working = app.state.engine
        app.state.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
        try:
            down_anonymous = client.get("/health").json()
            down_admin = client.get("/health", headers=auth["admin"]).json()
        finally:
            app.state.engine.dispose()
            app.state.engine = working
    for r in (anonymous, wrong_key, marketing):
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "degraded"
        for words in ("SELECT", "online_features", "OperationalError", "sqlite", "mlflow", "/"):
            assert words not in str(body["models"]), (words, body)
        assert body["models"]["features"]["error"] == DETAILS_HIDDEN
        assert body["models"]["churn"]["error"] == DETAILS_HIDDEN
        assert body["models"]["features"]["status"] == "degraded"
    assert "no such table: online_features" in admin["models"]["features"]["error"]
    assert "no 'champion' version of model 'loyalty-churn'" in admin["models"]["churn"]["error"]
    assert down_anonymous["database"] == DATABASE_DOWN
    assert down_admin["database"].startswith("error: OperationalError")
    assert "127.0.0.1" not in down_anonymous["database"]


def test_a_model_that_is_not_loaded_is_logged_once_not_per_request(
    client: TestClient, auth: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            r = client.post("/v1/offers/rank", json={"customer_id": "c-1"}, headers=auth["marketing"])
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "model_unavailable"
    assert [rec for rec in caplog.records if rec.levelno >= logging.WARNING] == []


def test_a_slot_logs_each_change_of_state_once(caplog: pytest.LogCaptureFixture) -> None:
    state = {"error": "no champion registered", "broken": False, "version": None}

    def load() -> tuple[str, str]:
        if state["broken"]:
            raise ValueError("/srv/models/model.txt is truncated")
        if state["version"] is None:
            raise Unavailable(str(state["error"]))
        return "model", str(state["version"])

    slot = Slot("churn model", load)
    with caplog.at_level(logging.DEBUG, logger="serving.runtime.slots"):
        for _ in range(3):
            slot.reload()  # the same failure at every poll
        state["broken"] = True
        for _ in range(3):
            slot.reload()  # another one
        state["broken"], state["version"] = False, "7"
        slot.reload()
    noted = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert noted == [
        ("WARNING", "churn model: load failed (not available): no champion registered"),
        ("ERROR", "churn model: load failed (not available): ValueError: /srv/models/model.txt is truncated"),
        ("INFO", "churn model: serving version 7"),
    ]


def test_callers_refused_with_503_never_read_an_unexpected_error_text() -> None:
    def load() -> tuple[str, str]:
        raise ValueError("/srv/models/model.txt is truncated")

    slot = Slot("churn model", load)
    slot.reload()
    with pytest.raises(Unavailable) as info:
        slot.get()
    assert "/srv" not in info.value.message
    assert "ValueError" in info.value.message
    assert "/srv/models/model.txt" in str(slot.status()["error"])  # the admin's view keeps it


# --- a real server: the connection after a 500 -----------------------------------------------------------


@pytest.fixture
def served(engine: Engine) -> Iterator[int]:
    """The app (with its failing ``/boom``) under a real uvicorn server on a free loopback port."""
    server = ThreadedServer(_app(engine), log_config=None, lifespan="on")
    with server:
        yield server.port


def test_after_a_500_the_connection_still_answers(served: int, caplog: pytest.LogCaptureFixture) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    try:
        conn.request("GET", "/boom")
        first = conn.getresponse()
        body = first.read()
        assert first.status == 500
        assert b"internal_error" in body
        closing = (first.getheader("connection") or "").lower() == "close"
        if closing:  # a server that ends the connection says so: the client then opens a new one
            return
        conn.request("GET", "/health")  # the same connection, kept alive as HTTP/1.1 promises
        second = conn.getresponse()
        assert second.status == 200
        second.read()
    finally:
        conn.close()
    assert "Exception in ASGI application" not in caplog.text


def test_a_503_names_the_missing_model_but_not_the_registry_or_its_path(
    request: pytest.FixtureRequest,
) -> None:
    """A champion that is not there is a 503 any core caller may read: what to do, not where the store is."""
    from serving.runtime.slot_loaders import model_slot

    registry: str = request.getfixturevalue("_empty_registry")
    store_path = registry.removeprefix("sqlite:///")
    slot = model_slot("loyalty-churn", "churn model", registry, lambda champion: champion)
    assert not slot.reload()
    with pytest.raises(Unavailable) as refused:
        slot.get()
    assert "train and promote one first" in refused.value.message
    assert store_path not in refused.value.message
    assert "sqlite" not in refused.value.message
    assert store_path in slot.status()["error"]  # an admin's /health still says where it looked
