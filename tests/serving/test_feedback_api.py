"""POST /v1/feedback joins events back to logged decisions; the decision log keeps its probabilities."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import InvalidInput, OfferEvent, in_transaction, record_decisions, upsert_offer

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


@pytest.fixture
def decided(engine: Engine) -> str:
    def seed(s: Session) -> None:
        upsert_offer(s, {"id": "fuel3x", "kind": "multiplier", "multiplier": 3, "duration_days": 7}, now=T0)
        record_decisions(
            s,
            [
                {
                    "id": "d-1",
                    "customer_id": "c-1",
                    "made_at": T0,
                    "policy": "champion",
                    "offer_id": "fuel3x",
                    "probability": 0.9,
                    "served": True,
                    "channel": "app",
                    "offers": [{"offer_id": "fuel3x", "score": 0.4, "probability": 0.9}],
                    "model_versions": {"offers": "3"},
                }
            ],
        )

    in_transaction(engine, seed)
    return "d-1"


def test_feedback_is_logged_once_against_its_decision(
    client: TestClient, auth: dict[str, dict[str, str]], decided: str, engine: Engine
) -> None:
    body = {"decision_id": decided, "offer_id": "fuel3x", "event": "viewed"}
    first = client.post("/v1/feedback", json=body, headers=auth["marketing"])
    assert first.status_code == 200, first.text
    assert (first.json()["customer_id"], first.json()["replayed"]) == ("c-1", False)
    again = client.post("/v1/feedback", json=body, headers=auth["core"])
    assert again.json()["replayed"] is True
    assert again.json()["recorded_at"] == first.json()["recorded_at"]
    with Session(engine) as s:
        rows = s.execute(select(OfferEvent.event, OfferEvent.decision_id, OfferEvent.channel)).all()
    assert [tuple(r) for r in rows] == [("viewed", "d-1", "app")]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"decision_id": "nope", "offer_id": "fuel3x", "event": "viewed"}, 404, "unknown_decision"),
        ({"decision_id": "d-1", "offer_id": "other", "event": "viewed"}, 422, "not_offered"),
        ({"decision_id": "d-1", "offer_id": "fuel3x", "event": "clicked"}, 422, "validation_error"),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    decided: str,
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    answer = client.post("/v1/feedback", json=body, headers=auth["core"])
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_feedback_needs_core_or_marketing(client: TestClient, decided: str) -> None:
    body = {"decision_id": decided, "offer_id": "fuel3x", "event": "shown"}
    assert client.post("/v1/feedback", json=body).status_code == 401
    assert client.post("/v1/feedback", json=body, headers={"X-API-Key": "wrong"}).status_code == 401


def test_decision_probabilities_must_be_probabilities(engine: Engine) -> None:
    row = {"id": "d", "customer_id": "c", "made_at": T0, "policy": "p", "offer_id": None, "probability": 1.5}
    with pytest.raises(InvalidInput, match="not in"):
        in_transaction(engine, lambda s: record_decisions(s, [row]))
