"""The service's vectorised bonus multipliers are ``models.policy.multiplier_for``, customer by customer."""

from __future__ import annotations

import numpy as np
import pytest

from models import MultiplierPolicy, customer_value, multiplier_for
from serving.runtime.served_models import MultiplierRule

NAMES = ("txn_amount_365d", "points_earned_30d", "tier")


@pytest.mark.parametrize("threshold", [1.0, 2.5, 8.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_multipliers_equal_multiplier_for(threshold: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    customers = np.column_stack(
        [rng.lognormal(11, 1.5, n), rng.poisson(300, n).astype(float), rng.integers(0, 3, n).astype(float)]
    )
    customers[rng.random(n) < 0.1, 0] = np.nan  # no spend on record
    churn = rng.beta(1, 3, n)
    policy = MultiplierPolicy()
    rule = MultiplierRule(threshold, 0.01, policy)
    got = rule.apply(churn, customers, NAMES)
    value, base = customer_value(customers, NAMES, churn, 0.01)
    want = [
        multiplier_for(c, v, b, threshold=threshold, policy=policy)
        for c, v, b in zip(churn, value, base, strict=True)
    ]
    assert got.tolist() == want
    assert len(set(want)) > 1, "the inputs should reach several levels"
