"""A ranking becomes a logged decision (``loyalty_core.DecisionRecord.from_ranking``)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import Decision, DecisionRecord, InvalidInput, record_decisions
from models.policy import (
    EpsilonGreedy,
    rank_offers,
)
from tests.models.policy.policy_data import NOW, catalogue, scores


def test_decision_record_is_a_decisions_row(engine: Engine) -> None:
    cat = catalogue()
    p, u = scores(cat)
    reasons = [[{"feature": "recency_days", "contribution": -0.2}] for _ in cat.offer_ids]
    r = rank_offers(
        cat, p, uplift=u, k=2, exploration=EpsilonGreedy(0.1), rng=np.random.default_rng(0), reasons=reasons
    )
    rec = DecisionRecord.from_ranking(
        r, customer_id="C1", made_at=NOW, channel="app", model_versions={"offers": "3", "uplift": "1"}
    )
    empty = DecisionRecord.from_ranking(
        rank_offers(cat, p, k=0), customer_id="C2", made_at=NOW, decision_id="d-empty"
    )
    with Session(engine) as s, s.begin():
        record_decisions(s, [rec.to_row(), empty.to_row()])
    with Session(engine) as s:
        got = s.get(Decision, rec.decision_id)
        assert got is not None
        assert got.offer_id == r.offers[0].offer_id
        assert got.probability == pytest.approx(r.offers[0].probability)
        assert got.policy == "epsilon_greedy:0.1"
        assert got.offers is not None
        assert [o["offer_id"] for o in got.offers] == [o.offer_id for o in r.offers]
        assert got.offers[0]["reasons"] == reasons[0]
        assert got.model_versions == {"offers": "3", "uplift": "1", "probability_method": "exact"}
        none = s.scalar(select(Decision).where(Decision.id == "d-empty"))
        assert none is not None
        assert none.offer_id is None
        assert none.probability == 1.0
    json.dumps(rec.to_row()["offers"])


def test_decision_record_refuses_naive_times() -> None:
    with pytest.raises(InvalidInput, match="made_at"):
        DecisionRecord.from_ranking(
            rank_offers(catalogue(), np.zeros(7)), customer_id="C", made_at=dt.datetime(2026, 1, 1)
        )
