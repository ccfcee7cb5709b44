"""Holds and held redemptions over HTTP: a timed-out hold's void answers in full, and an admin can release
or reject a redemption the fraud checks held (it used to answer 404 and leave the points unreserved)."""

from __future__ import annotations

import datetime as dt
import time

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loyalty_core import in_transaction, void_timed_out_holds

Headers = dict[str, dict[str, str]]


def _earn(client: TestClient, auth: Headers, tid: str, amount: str) -> None:
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    body = {"transaction_id": tid, "customer_id": "c-1", "type": "purchase", "amount": amount,
            "occurred_at": when}  # fmt: skip
    r = client.post("/v1/transactions", json=body, headers=auth["core"])
    assert r.status_code == 200, r.text


def test_void_of_a_hold_the_sweep_timed_out_answers_200_in_full(
    client: TestClient, auth: Headers, engine: Engine
) -> None:
    _earn(client, auth, "t-1", "10000.00")
    hold = {"hold_id": "h-1", "customer_id": "c-1", "points": 40, "reward": "gift", "timeout_seconds": 1}
    assert client.post("/v1/holds", json=hold, headers=auth["core"]).status_code == 200
    time.sleep(1.1)
    assert in_transaction(engine, lambda s: void_timed_out_holds(s)) == 1
    r = client.post("/v1/holds/h-1/void", headers=auth["core"])
    assert r.status_code == 200, r.text
    assert r.json() | {"expires_at": None} == {
        "hold_id": "h-1",
        "customer_id": "c-1",
        "points": 40,
        "status": "voided",
        "balance": 100,
        "available": None,
        "expires_at": None,
        "reason": "timeout",
    }
    assert r.headers.get("Idempotent-Replayed") == "true"
    r = client.post("/v1/holds/h-1/capture", headers=auth["core"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "hold_not_active")


def test_admin_releases_or_rejects_a_held_redemption(client: TestClient, auth: Headers) -> None:
    _earn(client, auth, "t-1", "300000.00")  # 3,000 points just now
    for rid in ("r-1", "r-2"):
        body = {"redemption_id": rid, "customer_id": "c-1", "points": 1200, "reward": "gift"}
        r = client.post("/v1/redemptions", json=body, headers=auth["core"])
        assert (r.status_code, r.json()["status"]) == (200, "held"), r.text
    customer = client.get("/v1/customers/c-1", headers=auth["core"]).json()
    assert (customer["balance"], customer["held"], customer["available"]) == (3000, 2400, 600)

    r = client.post("/v1/admin/redemptions/r-1/release", headers=auth["core"])
    assert r.status_code == 403
    r = client.post("/v1/admin/redemptions/r-1/release", headers=auth["admin"])
    assert r.status_code == 200, r.text
    assert r.json() == {"redemption_id": "r-1", "customer_id": "c-1", "status": "released", "points": 1200,
                        "balance": 1800}  # fmt: skip
    again = client.post("/v1/admin/redemptions/r-1/release", headers=auth["admin"])
    assert (again.json(), again.headers.get("Idempotent-Replayed")) == (r.json(), "true")
    r = client.post("/v1/admin/redemptions/r-1/reject", headers=auth["admin"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_reviewed")

    r = client.post("/v1/admin/redemptions/r-2/reject", headers=auth["admin"])
    assert (r.status_code, r.json()["status"], r.json()["balance"]) == (200, "rejected", 1800)
    customer = client.get("/v1/customers/c-1", headers=auth["core"]).json()
    assert (customer["balance"], customer["held"], customer["available"]) == (1800, 0, 1800)
    r = client.post("/v1/admin/redemptions/nope/release", headers=auth["admin"])
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_redemption")
