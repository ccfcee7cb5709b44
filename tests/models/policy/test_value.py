"""Expected incremental value: the uplift formula, its fallback, the request path agreeing with the batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_core import InvalidInput
from models.policy import (
    expected_value,
    rank_offers,
)
from tests.models.policy.policy_data import catalogue


def test_expected_value_uses_uplift_and_falls_back_to_propensity() -> None:
    p = np.array([[0.5, 0.2], [0.1, 0.4]])
    u = np.array([[0.1, np.nan], [np.nan, -0.05]])
    value, cost = np.array([100.0, 50.0]), np.array([20.0, 10.0])
    ev, used = expected_value(p, value, cost, u)
    np.testing.assert_allclose(ev, [[0.1 * 100 - 0.5 * 20, 0.2 * 40], [0.1 * 80, -0.05 * 50 - 0.4 * 10]])
    assert used.tolist() == [[True, False], [False, True]]
    ev2, used2 = expected_value(p, value, cost)
    np.testing.assert_allclose(ev2, p * (value - cost))
    assert not used2.any()


@pytest.mark.parametrize(
    ("p", "u"), [([1.2, 0.1], None), ([np.nan, 0.1], None), ([0.2, 0.1], [1.5, 0.0]), ([0.2, 0.1], [0.1])]
)
def test_expected_value_refuses_bad_scores(p: list[float], u: list[float] | None) -> None:
    with pytest.raises(InvalidInput):
        expected_value(np.array(p), np.ones(2), np.zeros(2), None if u is None else np.array(u))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_single_customer_expected_values_match_the_batch_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cat = catalogue()
    p = rng.uniform(0, 1, len(cat))
    u = np.where(rng.random(len(cat)) < 0.6, rng.uniform(-1, 1, len(cat)) * p, np.nan)
    ev, used = expected_value(p, cat.value, cat.cost, u)
    r = rank_offers(cat, p, uplift=u, k=len(cat), min_expected_value=None)
    assert len(r.offers) == len(cat)
    for o in r.offers:
        j = cat.index[o.offer_id]
        assert o.expected_value == pytest.approx(ev[j], abs=1e-9)
        assert o.source == ("uplift" if used[j] else "propensity")
    assert [o.expected_value for o in r.offers] == sorted((o.expected_value for o in r.offers), reverse=True)
    # uplift given as a list with None for "no estimate" means the same
    as_list = [None if np.isnan(x) else float(x) for x in u]
    again = rank_offers(cat, p.tolist(), uplift=as_list, k=len(cat), min_expected_value=None)
    assert again == r
