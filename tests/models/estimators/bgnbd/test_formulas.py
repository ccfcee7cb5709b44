"""BG/NBD formulas against the paper's CDNOW figures, direct integration and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from models.estimators.bgnbd import (
    conditional_expected_purchases,
    expected_purchases_new_customer,
    log_likelihood,
    probability_alive,
    simulate_bgnbd,
)
from tests.models.estimators.bgnbd.conftest import BANK, CDNOW_MLE, PAPER


def test_log_likelihood_equals_equation_6_written_out() -> None:
    """ln L via gammaln/logaddexp equals the paper's eq. 6 written out with Beta and Gamma functions."""
    r, alpha, a, b = PAPER.values()
    x = np.array([0, 2, 1, 29, 7])
    tx = np.array([0.0, 30.43, 1.71, 37.71, 29.43])
    T = np.array([38.86, 38.86, 38.86, 38.0, 38.86])
    common = special.gamma(r + x) * alpha**r / special.gamma(r)
    alive = special.beta(a, b + x) / special.beta(a, b) * common / (alpha + T) ** (r + x)
    dead = special.beta(a + 1, b + x - 1) / special.beta(a, b) * common / (alpha + tx) ** (r + x)
    by_hand = np.log(alive + np.where(x > 0, dead, 0.0))
    np.testing.assert_allclose(log_likelihood(PAPER, x, tx, T), by_hand, rtol=1e-12)
    # a customer who never came back: the chance of no purchase in (0, T] of an NBD, (alpha/(alpha+T))^r
    assert math.isclose(log_likelihood(PAPER, 0, 0, 38.86)[()], r * math.log(alpha / (alpha + 38.86)))


def test_predictions_reproduce_the_papers_cdnow_figures() -> None:
    # the paper's worked example: customer 0001 (x=2, t_x=30.43, T=38.86), expected purchases in 39 weeks
    assert conditional_expected_purchases(PAPER, 39, 2, 30.43, 38.86)[()] == pytest.approx(1.226, abs=5e-4)
    # the spreadsheet's E[X(t)] for a new customer, to its 4 decimals
    weeks = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0]
    published = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    np.testing.assert_allclose(expected_purchases_new_customer(CDNOW_MLE, weeks), published, atol=5e-4)


def posterior_expectation(params: dict[str, float], t: float, x: int, tx: float, T: float) -> float:
    """Eq. 10 without the hypergeometric function: given alive, lambda ~ Gamma(r+x, alpha+T) and
    p ~ Beta(a, b+x), and E[purchases in t | lambda, p] = (1 - exp(-lambda p t)) / p; integrate over p."""
    r, alpha, a, b = params.values()

    def integrand(p: float) -> float:
        return float(
            -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p * stats.beta.pdf(p, a, b + x)
        )

    value, _ = integrate.quad(integrand, 0, 1, limit=200, points=[1e-6, 1e-3])
    return float(value * probability_alive(params, x, tx, T)[()])


@pytest.mark.parametrize("params", [PAPER, BANK, {"r": 0.5, "alpha": 1.0, "a": 0.3, "b": 0.4}])
@pytest.mark.parametrize(
    ("t", "x", "tx", "T"),
    [(39, 0, 0, 40), (39, 1, 10, 40), (52, 5, 38, 40), (104, 400, 99, 100), (500, 2000, 400, 400)],
)
def test_conditional_expectation_matches_direct_integration(
    params: dict[str, float], t: float, x: int, tx: float, T: float
) -> None:
    ours = conditional_expected_purchases(params, t, x, tx, T)[()]
    assert ours == pytest.approx(posterior_expectation(params, t, x, tx, T), rel=1e-7)


def test_conditional_expectation_survives_where_the_printed_formula_overflows() -> None:
    r, alpha, a, b = PAPER.values()
    x, tx, T, t = 2000, 400.0, 400.0, 500.0
    with np.errstate(all="ignore"):
        printed = (
            (a + b + x - 1)
            / (a - 1)
            * (
                1
                - ((alpha + T) / (alpha + T + t)) ** (r + x)
                * special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
            )
        )
    assert not np.isfinite(printed)
    ours = conditional_expected_purchases(PAPER, t, x, tx, T)[()]
    assert np.isfinite(ours)
    assert ours == pytest.approx(posterior_expectation(PAPER, t, x, tx, T), rel=1e-7)


@pytest.mark.parametrize(
    "params", [{"r": 1.0, "alpha": 2.0, "a": 1.0, "b": 3.0}, {"r": 0.5, "alpha": 2.0, "a": 0.3, "b": 0.7}]
)
def test_removable_singularities_a_equal_1_and_a_plus_b_equal_1(params: dict[str, float]) -> None:
    for t, x, tx, T in [(39, 0, 0.0, 40.0), (52, 5, 38.0, 40.0)]:
        ours = conditional_expected_purchases(params, t, x, tx, T)[()]
        assert ours == pytest.approx(posterior_expectation(params, t, x, tx, T), rel=1e-6)


def test_new_customer_expectation_matches_simulated_mean() -> None:
    n, weeks = 20_000, 52.0
    for params in (PAPER, BANK):
        sim = simulate_bgnbd(n, weeks, params, seed=7)
        mean, se = sim["frequency"].mean(), sim["frequency"].std() / math.sqrt(n)
        assert abs(expected_purchases_new_customer(params, weeks)[()] - mean) < 3.5 * se
