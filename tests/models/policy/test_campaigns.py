"""Campaigns: one offer, many customers, within a budget and a head count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.policy import (
    allocate_campaign,
    expected_value,
)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.floats(0, 5_000), limit=st.none() | st.integers(0, 300))
def test_campaign_budget_is_never_exceeded_and_best_come_first(
    seed: int, budget: float, limit: int | None
) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    ids = [f"C{i:04d}" for i in range(n)]
    p = rng.uniform(0, 0.6, n)
    u = np.where(rng.random(n) < 0.8, rng.uniform(-0.1, 0.3, n) * p, np.nan)
    eligible = rng.random(n) < 0.9
    out = allocate_campaign(
        ids, p, value=400.0, cost=60.0, uplift=u, eligible=eligible, budget=budget, limit=limit
    )
    assert out["expected_cost"].sum() <= budget + 1e-9
    assert limit is None or len(out) <= limit
    assert (out["expected_value"] > 0).all()
    assert out["expected_value"].is_monotonic_decreasing
    np.testing.assert_allclose(out["cumulative_cost"], out["expected_cost"].cumsum())
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    chosen = set(out["customer_id"])
    assert all(eligible[ids.index(c)] for c in chosen)
    # a prefix of the ranking: every positive eligible customer left out is worth no more than the last one in
    ev, _ = expected_value(p, 400.0, 60.0, u)
    left = [ev[i] for i in range(n) if eligible[i] and ev[i] > 0 and ids[i] not in chosen]
    if len(out) and left:
        assert max(left) <= out["expected_value"].iloc[-1]


def test_campaign_without_budget_takes_every_positive_customer_and_counts_points() -> None:
    ids = ["A", "B", "C", "D"]
    p = np.array([0.5, 0.4, 0.1, 0.3])
    u = np.array([0.2, 0.0, 0.05, np.nan])
    out = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u)
    # EV: A 20-5=15, B -4, C 5-1=4, D fallback 0.3*90=27
    assert out["customer_id"].tolist() == ["D", "A", "C"]
    assert out["source"].tolist() == ["propensity", "uplift", "uplift"]
    pts = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u, budget=400, budget_cost=500)
    assert pts["customer_id"].tolist() == ["D", "A"]  # 150 + 250 points of bonus expected
    assert pts["cumulative_cost"].iloc[-1] == pytest.approx(400)
    ratio = allocate_campaign(ids, p, value=100.0, cost=10.0, uplift=u, rank_by="value_per_cost")
    assert ratio["customer_id"].tolist() == ["D", "C", "A"]  # 27/3, 4/1, 15/5 per RUB of expected cost
