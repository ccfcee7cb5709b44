"""Uplift on a randomised holdout: Qini curve by hand, uplift among the targeted, the IPW average effect."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_core import InvalidInput
from models.evaluation import average_effect, qini_coefficient, qini_curve, uplift_at


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_ipw_recovers_the_average_effect_when_arms_were_unequally_likely() -> None:
    """Treatment was likelier where x4 > 0; as x4 also drives the outcome, the naive difference is biased."""
    rng = np.random.default_rng(7)
    n = 60000
    x4 = rng.normal(size=n)
    p_treat = np.where(x4 > 0, 0.8, 0.2)
    treated = rng.random(n) < p_treat
    p0 = sigmoid(-1 + 1.5 * x4)
    y = (rng.random(n) < np.where(treated, p0 + 0.05, p0)).astype(int)
    naive = y[treated].mean() - y[~treated].mean()
    weighted = average_effect(y, treated, np.where(treated, p_treat, 1 - p_treat))
    assert abs(naive - 0.05) > 0.15
    assert abs(weighted - 0.05) < 0.02


def test_qini_curve_on_a_hand_example() -> None:
    # two treated responders, one control responder; scores put the treated responders first
    y = np.array([1, 1, 0, 0, 1, 0])
    treated = np.array([1, 1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    x, q = qini_curve(y, score, treated)
    np.testing.assert_allclose(x, np.arange(7) / 6)
    # at k=6: 2 - 1 * 3/3 = 1 incremental response, / 6 customers
    assert q[-1] == pytest.approx(1 / 6)
    # at k=2: 2 treated responders, no control yet -> 2 / 6
    assert q[2] == pytest.approx(2 / 6)
    constant = qini_coefficient(y, np.zeros(6), treated)
    assert constant == pytest.approx(0.0)  # all tied: one block, the random line


def test_uplift_at_a_share_is_the_rate_difference_among_the_targeted() -> None:
    #           targeted first (score 1.0 .. 0.7)          | the rest
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1])
    treated = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0])
    score = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    # top 40 %: treated rows y=1,0 (rate 0.5), control rows y=1,1 (rate 1.0)
    assert uplift_at(y, score, treated, 0.4) == pytest.approx(-0.5)
    # everyone: treated 2/5, control 3/5
    assert uplift_at(y, score, treated, 1.0) == pytest.approx(-0.2)
    with pytest.raises(InvalidInput, match="no treated or no control"):
        uplift_at(y, score, treated, 0.1)
