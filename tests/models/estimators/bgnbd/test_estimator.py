"""BG/NBD fitting (parameter recovery, conventions) and its predictions on a holdout drawn from the model's
own story."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score

from loyalty_core import InvalidInput
from models.estimators.bgnbd import (
    BetaGeoNBD,
    conditional_expected_purchases,
    customer_outlook,
    log_likelihood,
    probability_alive,
    probability_no_purchase,
    simulate_bgnbd,
)
from tests.models.estimators.bgnbd.conftest import BANK, PAPER, ages, rfm


@pytest.mark.parametrize(("params", "n"), [(PAPER, 20_000), (BANK, 10_000)], ids=["cdnow", "bank"])
def test_fit_recovers_the_parameters_it_simulated(params: dict[str, float], n: int) -> None:
    """Tolerance: with these sizes the standard errors are 1.5-6.5 % (b is the loosest), so 20 % is three
    standard errors or more; each estimate must also sit within 4 of its own standard errors."""
    sim = simulate_bgnbd(n, ages(n, seed=1), params, seed=2)
    model = BetaGeoNBD().fit(sim)
    assert model.converged_, model.optimizer_message_
    for name, truth in params.items():
        estimate, se = model.params_[name], model.params_se_[name]
        assert abs(estimate / truth - 1) < 0.20, (name, estimate, truth)
        assert abs(estimate - truth) < 4 * se, (name, estimate, truth, se)
    at_truth = log_likelihood(params, *rfm(sim)).sum()
    assert model.log_likelihood_ >= at_truth
    assert model.log_likelihood_ == pytest.approx(log_likelihood(model.params_, *rfm(sim)).sum())
    assert model.score(sim) == pytest.approx(model.log_likelihood_ / n)


def test_fit_accepts_an_array_and_pools_identical_histories() -> None:
    sim = simulate_bgnbd(3_000, 52.0, PAPER, seed=3)
    from_frame = BetaGeoNBD().fit(sim).params_
    doubled = np.vstack([sim[["frequency", "recency", "T"]].to_numpy()] * 2)
    from_array = BetaGeoNBD().fit(doubled).params_
    for name in from_frame:  # the same shape of likelihood, twice the weight: the same maximum
        assert from_array[name] == pytest.approx(from_frame[name], rel=1e-4)


def test_penalizer_shrinks_the_parameters() -> None:
    sim = simulate_bgnbd(3_000, ages(3_000, seed=4), BANK, seed=4)
    plain = BetaGeoNBD().fit(sim).params_
    shrunk = BetaGeoNBD(penalizer=0.01).fit(sim).params_
    assert sum(v**2 for v in shrunk.values()) < sum(v**2 for v in plain.values())


def test_a_base_without_repeat_purchases_does_not_pretend_to_converge() -> None:
    nobody_returns = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": np.linspace(5, 50, 50)})
    with pytest.warns(ConvergenceWarning, match="flat|bound"):
        model = BetaGeoNBD().fit(nobody_returns)
    assert not model.converged_


def test_estimator_follows_scikit_learn_conventions() -> None:
    model = BetaGeoNBD(penalizer=0.1)
    assert vars(model) == {"penalizer": 0.1, "max_iter": 1000}  # __init__ stores, nothing else
    assert clone(model).get_params() == {"penalizer": 0.1, "max_iter": 1000}
    with pytest.raises(NotFittedError):
        model.p_alive(1, 2.0, 3.0)
    sim = simulate_bgnbd(500, 52.0, BANK, seed=5)
    assert model.fit(sim) is model


# --- predictions ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def holdout_runs() -> dict[str, tuple[BetaGeoNBD, pd.DataFrame]]:
    """Fit on one to two years, then 26 more weeks of the same simulated customers."""
    runs = {}
    for name, params in (("cdnow", PAPER), ("bank", BANK)):
        sim = simulate_bgnbd(10_000, ages(10_000, seed=11), params, seed=12, holdout=26)
        runs[name] = (BetaGeoNBD().fit(sim), sim)
    return runs


@pytest.mark.parametrize("name", ["cdnow", "bank"])
def test_expected_purchases_predict_the_holdout(
    holdout_runs: dict[str, tuple[BetaGeoNBD, pd.DataFrame]], name: str
) -> None:
    model, sim = holdout_runs[name]
    predicted = model.expected_purchases(26, *rfm(sim))
    actual = sim["frequency_holdout"]
    assert predicted.mean() == pytest.approx(actual.mean(), rel=0.05)
    # Poisson noise and the ties at 0 cap a CDNOW-like base's rank correlation near 0.4
    floor = {"cdnow": 0.35, "bank": 0.7}[name]
    assert stats.spearmanr(predicted, actual).statistic > floor


@pytest.mark.parametrize("name", ["cdnow", "bank"])
def test_churn_score_is_a_calibrated_probability_of_no_purchase(
    holdout_runs: dict[str, tuple[BetaGeoNBD, pd.DataFrame]], name: str
) -> None:
    model, sim = holdout_runs[name]
    score = model.churn_score(26, *rfm(sim))
    quiet = (sim["frequency_holdout"] == 0).to_numpy()
    assert ((score >= 0) & (score <= 1)).all()
    assert score.mean() == pytest.approx(quiet.mean(), abs=0.01)
    deciles = pd.qcut(score, 10, labels=False, duplicates="drop")
    by_decile = pd.DataFrame({"score": score, "quiet": quiet}).groupby(deciles).mean()
    assert (by_decile["score"] - by_decile["quiet"]).abs().max() < 0.05


def test_p_alive_matches_the_simulated_truth(
    holdout_runs: dict[str, tuple[BetaGeoNBD, pd.DataFrame]],
) -> None:
    model, sim = holdout_runs["cdnow"]
    alive = model.p_alive(*rfm(sim))
    assert alive.mean() == pytest.approx(sim["alive"].mean(), abs=0.01)
    repeat = sim["frequency"] > 0  # where the model is not certain
    assert roc_auc_score(sim.loc[repeat, "alive"], alive[repeat]) > 0.8


def test_p_alive_is_one_without_repeat_purchases_so_it_ranks_churners_badly(
    holdout_runs: dict[str, tuple[BetaGeoNBD, pd.DataFrame]],
) -> None:
    """In the BG/NBD one can only leave right after a repeat purchase: someone who bought once, two years
    ago, is "alive" for sure. P(alive) then ranks the likeliest churners (one-time buyers) as the safest;
    churn_score, the probability of no purchase over the horizon, does not."""
    model, sim = holdout_runs["cdnow"]
    assert (model.p_alive(0, 0.0, np.array([1.0, 52.0, 520.0])) == 1.0).all()
    assert (model.p_alive(sim["frequency"], sim["recency"], sim["T"])[sim["frequency"] == 0] == 1.0).all()
    one_timer_long_ago, one_timer_new, regular = model.churn_score(
        26, [0, 0, 12], [0.0, 0.0, 50.0], [104.0, 2.0, 52.0]
    )
    assert one_timer_long_ago > one_timer_new > regular
    quiet = sim["frequency_holdout"] == 0
    auc_p_alive = roc_auc_score(quiet, -model.p_alive(*rfm(sim)))
    auc_churn = roc_auc_score(quiet, model.churn_score(26, *rfm(sim)))
    assert auc_p_alive < 0.6 < 0.75 < auc_churn


def test_churn_score_is_one_minus_p_alive_times_chance_of_buying() -> None:
    # a horizon of 0 leaves no time to buy; an endless one leaves only the chance of having left
    f, tx, T = np.array([0, 3, 10]), np.array([0.0, 20.0, 30.0]), np.array([40.0, 40.0, 40.0])
    np.testing.assert_array_equal(probability_no_purchase(PAPER, 0, f, tx, T), 1.0)
    np.testing.assert_allclose(
        probability_no_purchase(PAPER, 1e60, f, tx, T), 1 - probability_alive(PAPER, f, tx, T), atol=1e-9
    )
    longer = probability_no_purchase(PAPER, np.array([[4.0], [26.0], [52.0]]), f, tx, T)
    assert (np.diff(longer, axis=0) < 0).all()  # broadcast over horizons, and decreasing in them


def test_customer_outlook_is_the_three_predictions_in_one_call() -> None:
    # what the churn model's BG/NBD columns are computed with on every scoring request
    sim = simulate_bgnbd(500, 40.0, BANK, 3)
    f, tx, T = sim["frequency"], sim["recency"], sim["T"]
    alive, expected, quiet = customer_outlook(BANK, 26, f, tx, T)
    np.testing.assert_array_equal(alive, probability_alive(BANK, f, tx, T))
    np.testing.assert_array_equal(expected, conditional_expected_purchases(BANK, 26, f, tx, T))
    np.testing.assert_allclose(quiet, probability_no_purchase(BANK, 26, f, tx, T), rtol=1e-15)
    with pytest.raises(InvalidInput, match="recency is larger than T"):
        customer_outlook(BANK, 26, [1], [50.0], [40.0])
