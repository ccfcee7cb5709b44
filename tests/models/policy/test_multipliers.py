"""Bonus multipliers: within the budget, best customers first, the online rule following the batch."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_core import InvalidInput
from models.policy import (
    MultiplierPolicy,
    allocate_multipliers,
    multiplier_for,
)


def multiplier_population(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    churn = rng.beta(2, 5, n)
    value = rng.lognormal(8, 1, n)
    base = rng.gamma(2.0, 150.0, n)
    return churn, value, base


@pytest.mark.parametrize("budget", [0.0, 10_000.0, 100_000.0, None])
def test_multipliers_stay_in_the_set_and_within_budget(budget: float | None) -> None:
    churn, value, base = multiplier_population()
    pol = MultiplierPolicy()
    a = allocate_multipliers(churn, value, base, policy=pol, budget=budget)
    assert set(np.unique(a.multiplier)) <= set(pol.levels)
    np.testing.assert_allclose(a.extra_points, (a.multiplier - 1) * base)
    assert a.spent == pytest.approx(a.extra_points.sum())
    if budget is not None:
        assert a.spent <= budget + 1e-6
    if budget == 0.0:
        assert (a.multiplier == 1.0).all()
    # nothing is granted that keeps less value than its points cost
    kept_per_point = np.divide(
        a.retained_value, a.extra_points, out=np.full_like(base, np.inf), where=a.extra_points > 0
    )
    assert (kept_per_point[a.multiplier > 1] > pol.point_value).all()


def test_more_budget_buys_more_and_risky_valuable_customers_first() -> None:
    churn, value, base = multiplier_population()
    spent = [allocate_multipliers(churn, value, base, budget=b).spent for b in (1e3, 1e4, 1e5, 1e6)]
    assert spent == sorted(spent)
    a = allocate_multipliers(churn, value, base, budget=20_000)
    assert 1 < (a.multiplier > 1).sum() < len(churn)
    worth = churn * value / base  # RUB at risk per point earned: what the greedy ranks by
    assert worth[a.multiplier > 1].min() >= np.quantile(worth, 0.5)
    # an identical customer with higher churn risk never gets a lower multiplier
    c = np.array([0.1, 0.3, 0.6])
    m = allocate_multipliers(c, np.full(3, 5000.0), np.full(3, 200.0), budget=500).multiplier
    assert list(m) == sorted(m)


def test_online_rule_follows_the_batch_threshold() -> None:
    churn, value, base = multiplier_population()
    budget = 30_000.0
    batch = allocate_multipliers(churn, value, base, budget=budget)
    assert batch.threshold > MultiplierPolicy().point_value  # the budget binds
    online = np.array(
        [
            multiplier_for(c, v, b, threshold=batch.threshold)
            for c, v, b in zip(churn, value, base, strict=True)
        ]
    )
    assert (online <= batch.multiplier).all()
    assert ((online - 1) * base).sum() <= budget
    assert (online == batch.multiplier).mean() > 0.99
    no_budget = allocate_multipliers(churn, value, base)
    assert no_budget.threshold == MultiplierPolicy().point_value
    free = np.array(
        [
            multiplier_for(c, v, b, threshold=no_budget.threshold)
            for c, v, b in zip(churn[:200], value[:200], base[:200], strict=True)
        ]
    )
    np.testing.assert_array_equal(free, no_budget.multiplier[:200])


def test_dominated_levels_are_skipped() -> None:
    # 1.5x buys almost nothing here: the hull goes straight from 1x to 2x
    pol = MultiplierPolicy(levels=(1.0, 1.5, 2.0), effect=(0.0, 0.01, 0.30), point_value=0.5)
    a = allocate_multipliers(np.array([0.5]), np.array([1000.0]), np.array([100.0]), policy=pol)
    assert a.multiplier[0] == 2.0
    assert multiplier_for(0.5, 1000.0, 100.0, threshold=0.5, policy=pol) == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": (1.5, 2.0), "effect": (0.0, 0.1)},
        {"levels": (1.0, 2.0), "effect": (0.0,)},
        {"effect": (0, 0.1, 0.2, 1.5)},
    ],
)
def test_multiplier_policy_refuses_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        MultiplierPolicy(**kwargs)  # type: ignore[arg-type]
