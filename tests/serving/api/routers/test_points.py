"""The ledger over HTTP: scopes, earning, idempotency, spending, reversals, holds, offers, bad input."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from loyalty_core import Settings
from serving.app import create_app

Headers = dict[str, dict[str, str]]

# Recent enough that the points have not expired (lots live 12 months), old enough to be "past".
WHEN = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0).isoformat()


def txn(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": "t-1",
        "customer_id": "c-1",
        "type": "purchase",
        "amount": "1550.00",
        "occurred_at": WHEN,
        "category": "grocery",
        "channel": "pos",
    }
    body.update(overrides)
    return body


def post(client: TestClient, auth: Headers, **overrides: Any) -> Any:
    return client.post("/v1/transactions", json=txn(**overrides), headers=auth["core"])


def earn(client: TestClient, auth: Headers, customer: str, amount: str, tid: str) -> dict[str, Any]:
    r = post(client, auth, transaction_id=tid, customer_id=customer, amount=amount)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


# --- keys and scopes ----------------------------------------------------------------------------------------

# (method, path, scopes that may call it besides admin)
ROUTES = [
    ("POST", "/v1/transactions", {"core"}),
    ("POST", "/v1/transactions/t-1/reversal", {"core"}),
    ("POST", "/v1/redemptions", {"core"}),
    ("POST", "/v1/activities", {"core"}),
    ("POST", "/v1/holds", {"core"}),
    ("POST", "/v1/holds/h-1/capture", {"core"}),
    ("POST", "/v1/holds/h-1/void", {"core"}),
    ("GET", "/v1/customers/c-1", {"core", "marketing"}),
    ("GET", "/v1/customers/c-1/balance?as_of=2024-01-01T00:00:00Z", {"core", "marketing"}),
    ("GET", "/v1/offers", {"marketing"}),
    ("POST", "/v1/offers/o-1/activate", {"core"}),
    ("PUT", "/v1/offers/o-1", set()),
    ("POST", "/v1/admin/postings/t-1/release", set()),
    ("POST", "/v1/admin/postings/t-1/reject", set()),
]


@pytest.mark.parametrize(("method", "path", "scopes"), ROUTES)
def test_routes_refuse_missing_unknown_and_wrong_scope_keys(
    client: TestClient, auth: Headers, method: str, path: str, scopes: set[str]
) -> None:
    body = {} if method != "GET" else None
    assert_error(client.request(method, path, json=body), 401, "unauthorized")
    assert_error(
        client.request(method, path, json=body, headers={"X-API-Key": "not-a-key"}), 401, "unauthorized"
    )
    for scope in {"core", "marketing"} - scopes:
        assert_error(client.request(method, path, json=body, headers=auth[scope]), 403, "forbidden")
    for scope in scopes | {"admin"}:
        assert client.request(method, path, json=body, headers=auth[scope]).status_code not in (401, 403)


def test_unknown_route_and_method_use_the_error_shape(client: TestClient, auth: Headers) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.delete("/v1/transactions", headers=auth["core"]), 405, "method_not_allowed")


# --- earning ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "amount", "points"),
    [
        ("purchase", "1550.00", 15),
        ("purchase", "99.99", 0),
        ("purchase", "100", 1),
        ("bill_payment", "1550.00", 30),
        ("bill_payment", 250.5, 4),
        ("transfer", "1550.00", 5),
        ("transfer", "1.00", 5),
    ],
)
def test_post_transaction_earns_by_default_rules(
    client: TestClient, auth: Headers, kind: str, amount: Any, points: int
) -> None:
    r = post(client, auth, type=kind, amount=amount)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == points
    assert body["balance"] == points
    assert body["multiplier"] == 1.0
    assert body["status"] == "posted"
    assert body["tier"] == "base"
    assert body["transaction_id"] == "t-1"


def test_post_transaction_replay_returns_identical_body(client: TestClient, auth: Headers) -> None:
    first = post(client, auth)
    post(client, auth, transaction_id="t-2")
    again = post(client, auth)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_post_transaction_same_id_other_body_is_409(client: TestClient, auth: Headers) -> None:
    post(client, auth)
    assert_error(post(client, auth, amount="1551.00"), 409, "idempotency_conflict")


def test_post_transaction_accepts_numbers_and_normalises_amounts(client: TestClient, auth: Headers) -> None:
    assert post(client, auth, amount=1550).json()["points"] == 15
    # 1550 and "1550.0" are the same amount, hence a replay, not a conflict
    assert post(client, auth, amount="1550.0").status_code == 200


# --- redemptions --------------------------------------------------------------------------------------------


def test_redemption_spends_points_and_refuses_when_short(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "10000", "t-1")  # 100 points
    ok = client.post(
        "/v1/redemptions",
        json={"redemption_id": "r-1", "customer_id": "c-1", "points": 60, "reward": "cashback"},
        headers=auth["core"],
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["balance"] == 40
    assert ok.json()["status"] == "posted"
    short = client.post(
        "/v1/redemptions",
        json={"redemption_id": "r-2", "customer_id": "c-1", "points": 41, "reward": "gift"},
        headers=auth["core"],
    )
    error = assert_error(short, 409, "insufficient_points")
    assert error["details"] == {"available": 40, "requested": 41}
    view = client.get("/v1/customers/c-1", headers=auth["marketing"]).json()
    assert view["balance"] == 40


def test_redemption_for_unknown_customer_is_404(client: TestClient, auth: Headers) -> None:
    r = client.post(
        "/v1/redemptions",
        json={"redemption_id": "r-1", "customer_id": "nobody", "points": 1, "reward": "charity"},
        headers=auth["core"],
    )
    assert_error(r, 404, "unknown_customer")


# --- reversals ----------------------------------------------------------------------------------------------


def test_reversal_partial_then_full(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "1000.00", "t-1")  # 10 points
    partial = client.post(
        "/v1/transactions/t-1/reversal",
        json={"reversal_id": "rv-1", "amount": "250.00"},
        headers=auth["core"],
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["points_reversed"] == 2
    assert partial.json()["balance"] == 8
    rest = client.post("/v1/transactions/t-1/reversal", json={"reversal_id": "rv-2"}, headers=auth["core"])
    assert rest.json()["points_reversed"] == 8
    assert rest.json()["balance"] == 0
    assert rest.json()["amount"] == "750.00"
    assert_error(
        client.post("/v1/transactions/t-1/reversal", json={"reversal_id": "rv-3"}, headers=auth["core"]),
        409,
        "already_reversed",
    )
    assert_error(
        client.post("/v1/transactions/t-404/reversal", json={"reversal_id": "rv-4"}, headers=auth["core"]),
        404,
        "unknown_transaction",
    )


def test_reversal_after_spending_leaves_debt_that_later_earnings_settle(
    client: TestClient, auth: Headers
) -> None:
    earn(client, auth, "c-1", "1000.00", "t-1")  # 10 points
    spent = client.post(
        "/v1/redemptions",
        json={"redemption_id": "r-1", "customer_id": "c-1", "points": 10, "reward": "discount"},
        headers=auth["core"],
    )
    assert spent.json()["balance"] == 0
    reversal = client.post(
        "/v1/transactions/t-1/reversal", json={"reversal_id": "rv-1"}, headers=auth["core"]
    )
    assert (reversal.json()["balance"], reversal.json()["debt"], reversal.json()["points_reversed"]) == (
        0,
        10,
        10,
    )
    later = earn(client, auth, "c-1", "1500.00", "t-2")  # 15 points: 10 settle the debt
    assert later["balance"] == 5
    view = client.get("/v1/customers/c-1", headers=auth["core"]).json()
    assert (view["balance"], view["debt"]) == (5, 0)


# --- holds --------------------------------------------------------------------------------------------------


def _hold(client: TestClient, auth: Headers, hold_id: str, points: int, **extra: Any) -> Any:
    body = {"hold_id": hold_id, "customer_id": "c-1", "points": points, "reward": "discount", **extra}
    return client.post("/v1/holds", json=body, headers=auth["core"])


def test_hold_then_capture_spends_the_points(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "10000", "t-1")  # 100 points
    held = _hold(client, auth, "h-1", 40)
    assert held.status_code == 200, held.text
    assert (held.json()["status"], held.json()["available"], held.json()["balance"]) == ("active", 60, 100)
    view = client.get("/v1/customers/c-1", headers=auth["core"]).json()
    assert (view["held"], view["available"]) == (40, 60)
    captured = client.post("/v1/holds/h-1/capture", headers=auth["core"])
    assert (captured.json()["status"], captured.json()["balance"]) == ("captured", 60)
    assert_error(client.post("/v1/holds/h-1/void", headers=auth["core"]), 409, "hold_not_active")


def test_hold_then_void_gives_the_points_back(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "10000", "t-1")
    _hold(client, auth, "h-1", 100)
    assert_error(_hold(client, auth, "h-2", 1), 409, "insufficient_points")
    voided = client.post("/v1/holds/h-1/void", headers=auth["core"])
    assert (voided.json()["status"], voided.json()["balance"]) == ("voided", 100)
    assert client.get("/v1/customers/c-1", headers=auth["core"]).json()["available"] == 100
    assert_error(client.post("/v1/holds/h-404/capture", headers=auth["core"]), 404, "unknown_hold")


def test_hold_times_out_and_cannot_be_captured(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "10000", "t-1")
    assert _hold(client, auth, "h-1", 30, timeout_seconds=1).status_code == 200
    time.sleep(1.2)
    assert client.get("/v1/customers/c-1", headers=auth["core"]).json()["available"] == 100
    assert_error(client.post("/v1/holds/h-1/capture", headers=auth["core"]), 409, "hold_not_active")


# --- activities ---------------------------------------------------------------------------------------------


def test_activity_awards_once_per_id(client: TestClient, auth: Headers) -> None:
    def award(activity_id: str, kind: str = "social") -> Any:
        body = {"activity_id": activity_id, "customer_id": "c-1", "kind": kind}
        return client.post("/v1/activities", json=body, headers=auth["core"])

    first = award("a-1")
    assert (first.json()["points"], first.json()["balance"]) == (10, 10)
    assert award("a-1").json() == first.json()
    assert award("a-2", "survey").json()["balance"] == 60
    assert_error(award("a-1", "referral"), 409, "idempotency_conflict")
    assert_error(award("a-3", "dancing"), 422, "invalid_input")


# --- offers -------------------------------------------------------------------------------------------------


def test_offer_activation_multiplies_the_next_matching_posting(client: TestClient, auth: Headers) -> None:
    offer = {
        "name": "Travel x2",
        "kind": "multiplier",
        "multiplier": "2",
        "categories": ["travel"],
        "duration_days": 30,
    }
    put = client.put("/v1/offers/travel-2x", json=offer, headers=auth["admin"])
    assert put.status_code == 200, put.text
    assert put.json()["offer_id"] == "travel-2x"
    catalogue = client.get("/v1/offers", headers=auth["marketing"])
    assert [o["offer_id"] for o in catalogue.json()] == ["travel-2x"]

    activated = client.post(
        "/v1/offers/travel-2x/activate", json={"customer_id": "c-1"}, headers=auth["core"]
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["multiplier"] == 2.0
    now = dt.datetime.now(dt.UTC).isoformat()
    travel = post(client, auth, transaction_id="t-1", amount="1000", category="travel", occurred_at=now)
    assert (travel.json()["points"], travel.json()["multiplier"]) == (20, 2.0)
    grocery = post(client, auth, transaction_id="t-2", amount="1000", category="grocery", occurred_at=now)
    assert (grocery.json()["points"], grocery.json()["multiplier"]) == (10, 1.0)
    view = client.get("/v1/customers/c-1", headers=auth["core"]).json()
    assert [o["offer_id"] for o in view["active_offers"]] == ["travel-2x"]

    assert_error(
        client.post("/v1/offers/nope/activate", json={"customer_id": "c-1"}, headers=auth["core"]),
        404,
        "unknown_offer",
    )


def test_offer_upsert_validates_its_body(client: TestClient, auth: Headers) -> None:
    bad = {"kind": "multiplier", "multiplier": "50", "duration_days": 30}
    assert_error(client.put("/v1/offers/o-1", json=bad, headers=auth["admin"]), 422, "validation_error")


# --- held postings and their review -------------------------------------------------------------------------


def test_unusual_amount_is_held_then_released_by_admin(client: TestClient, auth: Headers) -> None:
    held = post(client, auth, amount="6000000.00")
    assert held.status_code == 200, held.text
    body = held.json()
    assert (body["status"], body["points"], body["balance"]) == ("held", 0, 0)
    assert body["reason"].startswith("unusual_amount")
    assert_error(client.post("/v1/admin/postings/t-1/release", headers=auth["core"]), 403, "forbidden")
    released = client.post("/v1/admin/postings/t-1/release", headers=auth["admin"])
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["points"], released.json()["balance"]) == (
        "released",
        60000,
        60000,
    )
    assert client.get("/v1/customers/c-1", headers=auth["core"]).json()["balance"] == 60000
    assert_error(client.post("/v1/admin/postings/t-404/release", headers=auth["admin"]), 404)


def test_velocity_hold_then_reject(client: TestClient, auth: Headers) -> None:
    for i in range(30):
        assert post(client, auth, transaction_id=f"t-{i}", amount="100").json()["status"] == "posted"
    held = post(client, auth, transaction_id="t-30", amount="100").json()
    assert held["status"] == "held"
    assert held["reason"].startswith("velocity")
    rejected = client.post("/v1/admin/postings/t-30/reject", headers=auth["admin"])
    assert (rejected.json()["status"], rejected.json()["balance"]) == ("rejected", 30)
    assert_error(client.post("/v1/admin/postings/t-1/release", headers=auth["admin"]), 409, "not_held")


# --- bad input: always a 4xx with the error shape, never a 500 ----------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": "-10.00"},
        {"amount": 0},
        {"amount": "0.00"},
        {"amount": "10000000000000"},
        {"amount": "1e400"},
        {"amount": "10.001"},
        {"amount": "NaN"},
        {"amount": "Infinity"},
        {"amount": True},
        {"amount": None},
        {"amount": [1]},
        {"amount": "ten"},
        {"type": "gift"},
        {"type": None},
        {"occurred_at": "2024-05-01T10:00:00"},
        {"occurred_at": "yesterday"},
        {"occurred_at": "2024-13-45T10:00:00Z"},
        {"occurred_at": "2999-01-01T00:00:00Z"},
        {"transaction_id": ""},
        {"transaction_id": "x" * 129},
        {"transaction_id": 12},
        {"customer_id": "y" * 65},
        {"customer_id": "   "},
        {"customer_id": "bad\u0000id"},
        {"channel": "c" * 17},
        {"currency": "GBP"},
        {"currency": "dollars"},
        {"unexpected": 1},
    ],
)
def test_bad_transactions_are_422(client: TestClient, auth: Headers, overrides: dict[str, Any]) -> None:
    error = assert_error(post(client, auth, **overrides), 422)
    assert error["code"] in {"validation_error", "invalid_input"}


@pytest.mark.parametrize("missing", ["transaction_id", "customer_id", "type", "amount", "occurred_at"])
def test_missing_fields_are_422_naming_the_field(client: TestClient, auth: Headers, missing: str) -> None:
    body = txn()
    del body[missing]
    error = assert_error(
        client.post("/v1/transactions", json=body, headers=auth["core"]), 422, "validation_error"
    )
    assert missing in error["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/redemptions", {"redemption_id": "r", "customer_id": "c", "points": "12", "reward": "gift"}),
        ("/v1/redemptions", {"redemption_id": "r", "customer_id": "c", "points": True, "reward": "gift"}),
        ("/v1/redemptions", {"redemption_id": "r", "customer_id": "c", "points": 0, "reward": "gift"}),
        ("/v1/redemptions", {"redemption_id": "r", "customer_id": "c", "points": 1.5, "reward": "gift"}),
        ("/v1/redemptions", {"redemption_id": "r", "customer_id": "c", "points": 5, "reward": "cash"}),
        (
            "/v1/holds",
            {"hold_id": "h", "customer_id": "c", "points": 5, "reward": "gift", "timeout_seconds": 0},
        ),
        ("/v1/holds", {"hold_id": "h", "customer_id": "c", "points": -5, "reward": "gift"}),
        ("/v1/activities", {"activity_id": "a", "customer_id": "c"}),
        ("/v1/transactions/t-1/reversal", {"reversal_id": "rv", "amount": "-1"}),
        ("/v1/transactions/t-1/reversal", {"reversal_id": "rv", "extra": True}),
        ("/v1/offers/o-1/activate", {"customer_id": 5}),
    ],
)
def test_bad_bodies_on_other_routes_are_422(client: TestClient, auth: Headers, path: str, body: Any) -> None:
    assert_error(client.post(path, json=body, headers=auth["core"]), 422, "validation_error")


def test_balance_as_of_needs_an_aware_timestamp(client: TestClient, auth: Headers) -> None:
    earn(client, auth, "c-1", "1000", "t-1")
    url = "/v1/customers/c-1/balance"
    assert_error(client.get(url, headers=auth["core"]), 422, "validation_error")
    assert_error(client.get(url, params={"as_of": "2024-05-01T00:00:00"}, headers=auth["core"]), 422)
    assert_error(client.get(url, params={"as_of": "soon"}, headers=auth["core"]), 422)
    past = client.get(url, params={"as_of": "2000-01-01T00:00:00Z"}, headers=auth["core"]).json()
    assert (past["balance"], past["debt"]) == (0, 0)
    now = client.get(url, params={"as_of": dt.datetime.now(dt.UTC).isoformat()}, headers=auth["core"]).json()
    assert now["balance"] == 10
    assert_error(client.get("/v1/customers/ghost/balance", params={"as_of": WHEN}, headers=auth["core"]), 404)


def test_unknown_customer_view_is_404(client: TestClient, auth: Headers) -> None:
    assert_error(client.get("/v1/customers/ghost", headers=auth["marketing"]), 404, "unknown_customer")


def test_malformed_and_non_json_bodies_are_4xx(client: TestClient, auth: Headers) -> None:
    json_headers = {**auth["core"], "Content-Type": "application/json"}
    assert_error(client.post("/v1/transactions", content=b'{"transaction_id": ', headers=json_headers), 400)
    assert_error(client.post("/v1/transactions", content=b"[1, 2]", headers=json_headers), 422)
    text_headers = {**auth["core"], "Content-Type": "text/plain"}
    assert_error(client.post("/v1/transactions", content=b"hello", headers=text_headers), 422)
    assert_error(client.post("/v1/transactions", content=b"", headers=json_headers), 422)


def test_oversized_bodies_are_413(client: TestClient, auth: Headers) -> None:
    limit = Settings().max_body_bytes  # the service's own limit: the client fixture keeps the default
    huge = txn(category="x" * (limit + 1000))
    headers = {**auth["core"], "Content-Type": "application/json"}
    assert_error(client.post("/v1/transactions", json=huge, headers=auth["core"]), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold on the streamed body too
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    assert_error(client.post("/v1/transactions", content=chunks(), headers=headers), 413, "payload_too_large")

    def small() -> Iterator[bytes]:
        yield b'{"transaction_id": "t-9", '
        yield (
            b'"customer_id": "c-9", "type": "transfer", "amount": "1", "occurred_at": "'
            + WHEN.encode()
            + b'"}'
        )

    streamed = client.post("/v1/transactions", content=small(), headers=headers)
    assert streamed.status_code == 200, streamed.text
    assert streamed.json()["points"] == 5


def test_unexpected_errors_are_500_with_the_error_shape(engine: Engine) -> None:
    app = create_app(Settings(database_url=str(engine.url), api_keys="core:k"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug, with a secret in its message")

    with TestClient(app, raise_server_exceptions=False) as client:
        error = assert_error(client.get("/boom"), 500, "internal_error")
    assert "secret" not in error["message"]


# --- operations ---------------------------------------------------------------------------------------------


def test_health_is_ok_and_degraded_when_the_database_is_down(client: TestClient) -> None:
    first = client.get("/health").json()
    # No champion in this test's registry: degraded because of the models, not the database.
    assert (first["status"], first["database"]) == ("degraded", "ok")
    assert first["models"]["churn"]["status"] == "degraded"
    app: Any = client.app
    working = app.state.engine
    app.state.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        r = client.get("/health")
    finally:
        app.state.engine.dispose()
        app.state.engine = working
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert r.json()["database"].startswith("error:")


def test_metrics_count_postings_by_status(client: TestClient, auth: Headers) -> None:
    post(client, auth)
    post(client, auth)
    text = client.get("/metrics").text
    assert 'loyalty_postings_total{status="posted"}' in text
    assert 'loyalty_postings_total{status="replayed"}' in text
    assert 'loyalty_http_requests_total{method="POST",route="/v1/transactions",status="200"}' in text
    assert "loyalty_http_request_duration_seconds_bucket" in text


def test_openapi_lists_the_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/transactions",
        "/v1/transactions/{transaction_id}/reversal",
        "/v1/redemptions",
        "/v1/activities",
        "/v1/holds",
        "/v1/holds/{hold_id}/capture",
        "/v1/holds/{hold_id}/void",
        "/v1/customers/{customer_id}",
        "/v1/customers/{customer_id}/balance",
        "/v1/offers",
        "/v1/offers/{offer_id}",
        "/v1/offers/{offer_id}/activate",
        "/v1/admin/postings/{transaction_id}/release",
        "/v1/admin/postings/{transaction_id}/reject",
        "/health",
        "/metrics",
    ):
        assert path in paths, path
    assert "APIKeyHeader" in doc["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_post_and_replay_on_postgres(pg_client: TestClient, auth: Headers) -> None:
    first = post(pg_client, auth, type="bill_payment")
    assert first.status_code == 200, first.text
    assert (first.json()["points"], first.json()["balance"]) == (30, 30)
    again = post(pg_client, auth, type="bill_payment")
    assert again.content == first.content
    assert_error(post(pg_client, auth, type="purchase"), 409, "idempotency_conflict")
    spent = pg_client.post(
        "/v1/redemptions",
        json={"redemption_id": "r-1", "customer_id": "c-1", "points": 31, "reward": "gift"},
        headers=auth["core"],
    )
    assert_error(spent, 409, "insufficient_points")
