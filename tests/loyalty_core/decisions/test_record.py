"""The decision record: its shadow twin, its insert with typed context columns, shadow_pairs on them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty_core import (
    SHADOW_PREFIX,
    Decision,
    DecisionRecord,
    InvalidInput,
    record_decisions,
    shadow_id,
    shadow_pairs,
    shadow_policy,
)

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Offer:
    offer_id: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "probability": self.probability, "score": 0.5}


@dataclass(frozen=True)
class Ranked:
    offers: tuple[Offer, ...]
    policy: str
    probability_method: str = "exact"
    probabilities: dict[str, float] = field(default_factory=dict)


SERVED = Ranked((Offer("a", 0.9),), "epsilon_greedy:0.1", probabilities={"a": 0.9, "b": 0.1})
CHALLENGER = Ranked((Offer("b", 0.6),), "thompson:gaussian", "monte_carlo:10", {"a": 0.4, "b": 0.6})
SCORES = {"a": 0.31234567, "b": 0.2}


def test_shadow_names_the_served_decision_and_is_never_served() -> None:
    served = DecisionRecord.from_ranking(
        SERVED, customer_id="c", made_at=NOW, model_versions={"offers": "1"}, k=1, scores=SCORES
    )
    shadow = served.shadow(CHALLENGER, scores=SCORES)
    assert shadow.decision_id == shadow_id(served.decision_id) == f"{served.decision_id}.shadow"
    assert shadow.policy == shadow_policy("thompson:gaussian") == f"{SHADOW_PREFIX}thompson:gaussian"
    assert (shadow.served, shadow.shadow_of, shadow.k) == (False, served.decision_id, 1)
    assert shadow.model_versions == {"offers": "1"}
    assert served.candidates == {"a": [0.9, 0.312346], "b": [0.1, 0.2]}
    assert shadow.candidates == {"a": [0.4, 0.312346], "b": [0.6, 0.2]}


def test_context_goes_to_typed_columns_not_model_versions(engine: Engine) -> None:
    served = DecisionRecord.from_ranking(
        SERVED, customer_id="c", made_at=NOW, model_versions={"offers": "1"}, k=1, scores=SCORES
    )
    plain = {  # an importer's row in the table's shape, without context columns
        "id": "campaign-row",
        "customer_id": "c",
        "made_at": NOW,
        "policy": "campaign:x",
        "offer_id": None,
        "probability": 0.5,
        "served": True,
        "channel": None,
        "offers": None,
        "model_versions": None,
    }
    with Session(engine) as s, s.begin():
        record_decisions(s, [served, served.shadow(CHALLENGER, scores=SCORES), plain])
    with Session(engine) as s:
        got = s.get(Decision, served.decision_id)
        assert got is not None
        assert got.model_versions == {"offers": "1", "probability_method": "exact"}
        assert (got.k, got.candidates, got.shadow_of) == (1, served.candidates, None)
        row = s.get(Decision, "campaign-row")
        assert row is not None
        assert (row.k, row.candidates, row.shadow_of) == (None, None, None)
        shadows, twins, events = shadow_pairs(s)
    assert [r["shadow_of"] for r in shadows] == [served.decision_id]
    assert shadows[0]["k"] == 1
    assert shadows[0]["candidates"] == {"a": [0.4, 0.312346], "b": [0.6, 0.2]}
    assert [r["id"] for r in twins] == [served.decision_id]
    assert events == []


def test_a_probability_outside_zero_one_is_refused(engine: Engine) -> None:
    bad = DecisionRecord("d", "c", NOW, "p", ({"offer_id": "a", "probability": 1.5},))
    with Session(engine) as s, s.begin(), pytest.raises(InvalidInput, match="probability"):
        record_decisions(s, [bad])
