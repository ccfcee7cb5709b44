"""Every scoring and decision route admits exactly its scopes (admin everywhere) and refuses the others."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

ROUTES: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/v1/score", {"customer_ids": ["c-1"]}, {"core"}),
    ("POST", "/v1/offers/rank", {"customer_id": "c-1"}, {"marketing"}),
    ("POST", "/v1/campaigns", {"offer_id": "o-1"}, {"marketing"}),
    (
        "POST",
        "/v1/feedback",
        {"decision_id": "d-1", "offer_id": "o-1", "event": "shown"},
        {"core", "marketing"},
    ),
    ("POST", "/v1/offers/o-1/activate", {"customer_id": "c-1"}, {"core"}),
    ("GET", "/v1/offers", None, {"marketing"}),
    ("PUT", "/v1/offers/o-1", {"kind": "multiplier", "multiplier": 2, "duration_days": 7}, set()),
    ("GET", "/v1/customers/c-1", None, {"core", "marketing"}),
    ("POST", "/v1/admin/models/reload", None, set()),
    ("GET", "/v1/admin/shadow", None, set()),
]
IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


@pytest.mark.parametrize(("method", "path", "body", "scopes"), ROUTES, ids=IDS)
def test_each_route_admits_its_scopes_and_refuses_the_others(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    scopes: set[str],
) -> None:
    for scope in ("core", "marketing", "admin"):
        r = client.request(method, path, json=body, headers=auth[scope])
        if scope in scopes or scope == "admin":
            assert r.status_code not in (401, 403), (scope, r.text)
        else:
            assert r.status_code == 403, (scope, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    for headers in ({}, {"X-API-Key": "not-a-key"}):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
