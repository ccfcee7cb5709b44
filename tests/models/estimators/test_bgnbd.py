"""BG/NBD: the formulas against the paper's CDNOW figures and against direct integration, parameter recovery
and holdout predictions on histories drawn from the model's own story, point-in-time summaries, bad input."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score

from loyalty_core import InvalidInput
from models.bgnbd import (
    BetaGeoNBD,
    conditional_expected_purchases,
    customer_outlook,
    expected_purchases_new_customer,
    log_likelihood,
    probability_alive,
    probability_no_purchase,
    simulate_bgnbd,
    summarise,
)

# Fader, Hardie & Lee (2005), CDNOW sample of 2,357 customers, in weeks: the rounded estimates printed in the
# paper, and the unrounded ones of the accompanying spreadsheet (notes/004) that its tables are computed with.
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_MLE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7931, "b": 2.4259}
# A bank-like base: about two purchase days a fortnight, few leave after any one of them.
BANK = {"r": 2.0, "alpha": 3.0, "a": 1.2, "b": 20.0}
UTC = dt.UTC


def ages(n: int, seed: int) -> np.ndarray:
    """One to two years of history (in weeks), like customers acquired over a year."""
    return np.random.default_rng(seed).uniform(52, 104, n)


def rfm(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return frame["frequency"], frame["recency"], frame["T"]


# --- formulas -------------------------------------------------------------------------------------------


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


# --- fitting --------------------------------------------------------------------------------------------


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


# --- summarise ------------------------------------------------------------------------------------------

AS_OF = dt.datetime(2025, 1, 29, tzinfo=UTC)


def events() -> pd.DataFrame:
    stamps = [
        ("A", "2025-01-01T10:00:00Z"),
        ("A", "2025-01-01T18:00:00Z"),  # same day: the same purchase occasion
        ("A", "2025-01-08T09:00:00Z"),
        ("A", "2025-01-15T23:59:00Z"),
        ("B", "2025-01-20T12:00:00Z"),
        ("C", "2025-01-29T00:00:00Z"),  # at as_of: not seen
    ]
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in stamps],
            "occurred_at": pd.to_datetime([s for _, s in stamps], utc=True),
        }
    )


def test_summarise_by_hand() -> None:
    summary = summarise(events(), as_of=AS_OF)
    expected = pd.DataFrame(
        {"frequency": [2, 0], "recency": [2.0, 0.0], "T": [4.0, 9 / 7]},
        index=pd.Index(["A", "B"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected, check_index_type=False)
    in_days = summarise(events(), as_of=AS_OF, unit_days=1)
    assert list(in_days.loc["A"]) == [2, 14.0, 28.0]


def test_summarise_sees_nothing_on_or_after_as_of() -> None:
    later = pd.DataFrame(
        {
            "customer_id": ["A", "B", "D", "A"],
            "occurred_at": pd.to_datetime(
                [
                    "2025-01-29T00:00:00Z",
                    "2025-02-03T08:00:00Z",
                    "2025-01-30T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                ],
                utc=True,
            ),
        }
    )
    before = summarise(events(), as_of=AS_OF)
    after = summarise(pd.concat([later, events()], ignore_index=True), as_of=AS_OF)
    pd.testing.assert_frame_equal(after, before)
    # a plain date is midnight UTC of that day
    pd.testing.assert_frame_equal(summarise(events(), as_of=dt.date(2025, 1, 29)), before)
    # nobody had bought yet: an empty frame of the same shape, not an error
    nothing_yet = summarise(later, as_of=AS_OF)
    assert nothing_yet.empty
    assert list(nothing_yet.columns) == ["frequency", "recency", "T"]


def test_summarise_counts_utc_days_whatever_the_column_timezone() -> None:
    moscow = events()
    moscow["occurred_at"] = moscow["occurred_at"].dt.tz_convert("Europe/Moscow")
    pd.testing.assert_frame_equal(summarise(moscow, as_of=AS_OF), summarise(events(), as_of=AS_OF))
    # 01:00 in Moscow on the 29th is 22:00 UTC on the 28th: before the cutoff, on the 28th
    late = pd.DataFrame(
        {
            "customer_id": ["E"],
            "occurred_at": pd.DatetimeIndex([pd.Timestamp("2025-01-29T01:00", tz="Europe/Moscow")]),
        }
    )
    assert list(summarise(late, as_of=AS_OF, unit_days=1).loc["E"]) == [0, 0.0, 1.0]


def test_summarise_output_feeds_the_model() -> None:
    model = BetaGeoNBD().fit(simulate_bgnbd(2_000, 52.0, PAPER, seed=9))
    summary = summarise(events(), as_of=AS_OF)
    assert model.churn_score(4, *rfm(summary)).shape == (2,)
    assert np.isfinite(model.score(summary))


def naive_times() -> pd.DataFrame:
    frame = events()
    frame["occurred_at"] = frame["occurred_at"].dt.tz_localize(None)
    return frame


def missing_customer() -> pd.DataFrame:
    frame = events()
    frame.loc[1, "customer_id"] = None
    return frame


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (events().drop(columns="occurred_at"), {}, "lack column\\(s\\) occurred_at"),
        (naive_times(), {}, "timezone-aware timestamps"),
        (missing_customer(), {}, "'customer_id' is empty at row 1"),
        (events(), {"as_of": dt.datetime(2025, 1, 29)}, "as_of must be timezone-aware"),
        (events(), {"unit_days": 0}, "unit_days must be a positive"),
    ],
)
def test_summarise_rejects_bad_input(frame: pd.DataFrame, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        summarise(frame, **{"as_of": AS_OF, **kwargs})  # type: ignore[arg-type]


# --- invalid input to the model -------------------------------------------------------------------------


def history(**columns: list[float]) -> pd.DataFrame:
    base = {"frequency": [1.0, 2.0], "recency": [3.0, 4.0], "T": [10.0, 10.0]}
    return pd.DataFrame({**base, **columns}, index=["c1", "c2"])


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (history().iloc[:0], "no customers"),
        (history().drop(columns="T"), "lacks column\\(s\\) T"),
        (np.ones((3, 2)), "three columns"),
        (history(frequency=[1.0, -1.0]), "frequency is negative at row 'c2'"),
        (history(frequency=[1.5, 2.0]), "frequency is not a whole number .* at row 'c1'"),
        (history(recency=[3.0, 11.0]), "recency is larger than T .* at row 'c2'"),
        (history(recency=[0.0, 4.0]), "recency is 0 although frequency > 0 .* at row 'c1'"),
        (history(frequency=[0.0, 2.0]), "recency is not 0 although frequency is 0 at row 'c1'"),
        (history(T=[10.0, float("nan")]), "T is missing or infinite at row 'c2'"),
        (history(recency=[3.0, -4.0]), "recency is negative"),
    ],
)
def test_fit_rejects_invalid_histories(X: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        BetaGeoNBD().fit(X)  # type: ignore[arg-type]


def test_bad_settings_and_arguments_are_named() -> None:
    with pytest.raises(InvalidInput, match="penalizer"):
        BetaGeoNBD(penalizer=-1).fit(history())
    with pytest.raises(InvalidInput, match="alpha must be positive"):
        probability_alive({**PAPER, "alpha": 0.0}, 1, 2.0, 3.0)
    with pytest.raises(InvalidInput, match="lack b"):
        simulate_bgnbd(10, 52.0, {"r": 1, "alpha": 1, "a": 1}, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD().fit(history())
    with pytest.raises(InvalidInput, match="horizon t must be finite and >= 0"):
        model.expected_purchases(-1, 1, 2.0, 3.0)
    with pytest.raises(InvalidInput, match="incompatible shapes"):
        model.churn_score(4, [1, 2], [2.0, 3.0, 4.0], 10.0)
