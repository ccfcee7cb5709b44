"""Training: frame checks, out-of-time splits, early stopping, calibration, baselines, the offer model."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from loyalty_core import InvalidInput
from models.estimators import (
    BoostedClassifier,
    OfferResponseRateBaseline,
    RecencyFrequencyBaseline,
    train,
)
from models.evaluation import classification_metrics, is_better, lift_at
from models.inputs import FrameSpec, customer_offer_frame, fingerprint, offer_attributes, split_out_of_time
from models.scorer import Calibrator, fit_calibrator
from tests.models.conftest import OFFERS, churn_frame, offer_frame


def test_split_out_of_time_validates_on_the_latest_cutoff(churn: pd.DataFrame) -> None:
    train_part, val_part = split_out_of_time(churn)
    assert val_part["as_of"].nunique() == 1
    assert val_part["as_of"].iloc[0] == churn["as_of"].max()
    assert train_part["as_of"].max() < val_part["as_of"].min()
    assert len(train_part) + len(val_part) == len(churn)


def test_split_out_of_time_needs_two_cutoffs(churn: pd.DataFrame) -> None:
    one = churn[churn["as_of"] == churn["as_of"].min()]
    with pytest.raises(InvalidInput, match="distinct 'as_of'"):
        split_out_of_time(one)


def test_frame_spec_names_the_bad_column_and_row(churn: pd.DataFrame) -> None:
    spec = FrameSpec(label="churned")
    assert "churned" not in spec.validate(churn)
    assert "customer_id" not in spec.validate(churn)

    bad_label = churn.assign(churned=churn["churned"].astype(np.int64))
    bad_label.loc[7, "churned"] = 2
    with pytest.raises(InvalidInput, match=r"'churned' must be 0 or 1, got 2 at row 7"):
        spec.validate(bad_label)

    text = churn.assign(region="Moscow")
    with pytest.raises(InvalidInput, match="'region' is not numeric"):
        FrameSpec(label="churned", features=("days_since_last_txn", "region")).validate(text)

    infinite = churn.copy()
    infinite.loc[3, "spend_trend_30d"] = np.inf
    with pytest.raises(InvalidInput, match="'spend_trend_30d' is infinite at row 3"):
        spec.validate(infinite)

    with pytest.raises(InvalidInput, match="lacks column"):
        spec.validate(churn.drop(columns=["as_of"]))


def test_boosted_classifier_stops_early_and_calibrates_on_the_last_training_cutoff(
    churn: pd.DataFrame,
) -> None:
    train_part, _ = split_out_of_time(churn)
    model = BoostedClassifier(max_rounds=500, early_stopping_rounds=20).fit(train_part, train_part["churned"])
    assert model.split_ == "out_of_time"
    assert model.fit_cutoffs_ == ["2026-01-31", "2026-02-28"]
    assert model.calibration_cutoff_ == "2026-03-31"
    assert 1 <= model.best_iteration_ < 500
    assert model.booster_.num_trees() == model.best_iteration_
    assert model.features_ == [
        "days_since_last_txn",
        "txn_count_90d",
        "spend_trend_30d",
        "tenure_days",
        "points_balance",
        "noise_a",
        "noise_b",
    ]
    proba = model.predict_proba(train_part)
    assert proba.shape == (len(train_part), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_a_never_observed_column_trains_quietly_and_has_no_reference_value(churn: pd.DataFrame) -> None:
    """A feature with no value in the fit rows (e.g. a new offer kind) is normal, not worth a warning."""
    import warnings

    train_part, _ = split_out_of_time(churn)
    frame = train_part.assign(never_seen=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = BoostedClassifier(max_rounds=30).fit(frame, frame["churned"])
    assert "never_seen" in model.features_
    assert "never_seen" not in model.reference_


def test_single_training_cutoff_falls_back_to_a_random_inner_split(churn: pd.DataFrame) -> None:
    one = churn[churn["as_of"] == churn["as_of"].min()]
    model = BoostedClassifier().fit(one, one["churned"])
    assert model.split_ == "random"
    assert model.calibration_cutoff_ is None
    assert 0.1 < model.calibration_rows_ / len(one) < 0.3


def test_calibration_is_not_worse_than_the_raw_booster_on_the_holdout(churn: pd.DataFrame) -> None:
    """The base rate drifts upwards over cutoffs: the calibrator, fitted on the latest training cutoff,
    corrects what the trees (grown on earlier cutoffs) underestimate."""
    result = train(churn, "churn")
    m = result.metrics
    assert m["val_brier"] <= m["raw_val_brier"]
    assert m["val_log_loss"] <= m["raw_val_log_loss"]
    assert m["val_log_loss"] < m["raw_val_log_loss"] - 0.01  # a real improvement under drift
    # the mean prediction moves towards the holdout's observed rate
    observed = result.y_val.mean()
    assert abs(result.proba_val.mean() - observed) < abs(result.raw_proba_val.mean() - observed)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_does_not_hurt_without_drift(method: str) -> None:
    frame = churn_frame(n_customers=3000, drift=0.0, seed=5)
    result = train(frame, "churn", params={"calibration": method})
    m = result.metrics
    assert result.data["calibration_method"] == method
    assert m["val_brier"] <= m["raw_val_brier"] + 0.002
    assert m["val_log_loss"] <= m["raw_val_log_loss"] + 0.005


def test_isotonic_calibrator_is_sklearn_isotonic_regression_kept_off_0_and_1() -> None:
    rng = np.random.default_rng(3)
    margin = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-3 * margin))).astype(int)
    cal = fit_calibrator(margin, y, "isotonic")
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
    test = np.r_[rng.normal(scale=3, size=2000), -10.0, 10.0]
    ours, theirs = cal.apply(test), iso.predict(test)
    assert iso.predict([-10.0])[0] == 0.0
    assert iso.predict([10.0])[0] == 1.0
    assert ours.min() > 0.0
    assert ours.max() < 1.0
    # otherwise the same step function: a plateau of n rows moves by at most 0.5 / (n + 1)
    assert np.abs(ours - theirs).max() < 0.1
    assert np.abs(ours - theirs).mean() < 0.01
    order = np.argsort(test)
    assert np.all(np.diff(ours[order]) >= 0)
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.apply(test), cal.apply(test))


def test_sigmoid_calibrator_round_trips_and_is_monotone() -> None:
    rng = np.random.default_rng(4)
    margin = rng.normal(size=500)
    y = (rng.random(500) < 1 / (1 + np.exp(-(0.5 * margin - 1)))).astype(int)
    cal = fit_calibrator(margin, y, "auto")
    assert cal.method == "sigmoid"  # 500 rows: too few for isotonic
    assert 0.2 < cal.a < 1.0
    grid = np.linspace(-40, 40, 81)
    p = cal.apply(grid)
    assert np.all(np.diff(p) >= 0)
    assert p[0] >= 0
    assert p[-1] <= 1
    assert Calibrator.from_dict(cal.to_dict()).to_dict() == cal.to_dict()


def test_model_beats_the_baseline_on_data_with_signal(churn: pd.DataFrame) -> None:
    result = train(churn, "churn")
    m = result.metrics
    assert m["val_roc_auc"] > m["baseline_val_roc_auc"] + 0.02
    assert m["val_log_loss"] < m["baseline_val_log_loss"]
    assert m["val_lift_at_10pct"] > 1.5
    assert set(result.metrics) >= {
        "val_roc_auc",
        "val_pr_auc",
        "val_log_loss",
        "val_brier",
        "val_lift_at_10pct",
        "baseline_val_roc_auc",
    }
    assert result.train_cutoffs == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert result.validation_cutoffs == ["2026-04-30"]
    keys_features_label = ["customer_id", "as_of", *result.features, "churned"]
    assert result.data["sha256"] == fingerprint(churn, keys_features_label)


def test_without_signal_the_holdout_shows_no_skill() -> None:
    """Guards against leakage: labels independent of the features must score near AUC 0.5 out of time."""
    result = train(churn_frame(signal=0.0, seed=9), "churn")
    assert abs(result.metrics["val_roc_auc"] - 0.5) < 0.06


def test_train_refuses_a_label_column_with_other_values(churn: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="lacks column"):
        train(churn, "churn", label="churn_60d")
    with pytest.raises(InvalidInput, match="unknown model"):
        train(churn, "retention")


def test_dataset_hash_changes_with_the_data(churn: pd.DataFrame) -> None:
    columns = list(churn.columns)
    digest = fingerprint(churn, columns)
    assert fingerprint(churn.copy(), columns) == digest
    changed = churn.copy()
    changed.loc[0, "days_since_last_txn"] += 1
    assert fingerprint(changed, columns) != digest
    assert fingerprint(churn.iloc[::-1], columns) != digest  # row order is part of the version
    assert fingerprint(churn, columns[::-1]) != digest


# --- baselines --------------------------------------------------------------------------------------------
def test_recency_frequency_baseline_learns_the_rule(churn: pd.DataFrame) -> None:
    base = RecencyFrequencyBaseline(n_bins=4).fit(churn, churn["churned"])
    probe = pd.DataFrame({"days_since_last_txn": [1.0, 40.0, np.nan], "txn_count_90d": [60, 2, 10]})
    p = base.predict_proba(probe)[:, 1]
    assert p[1] > p[0] + 0.2  # long silent, rare -> much riskier than recent, frequent
    assert 0 < p[2] < 1
    with pytest.raises(InvalidInput, match="days_since_last_txn"):
        base.predict_proba(probe.drop(columns=["days_since_last_txn"]))


def test_offer_rate_baseline_uses_each_offers_rate_and_the_overall_rate_for_new_offers() -> None:
    X = pd.DataFrame({"offer_id": ["a"] * 100 + ["b"] * 100})
    y = np.r_[np.ones(60), np.zeros(40), np.ones(10), np.zeros(90)]
    base = OfferResponseRateBaseline(prior_strength=0).fit(X, y)
    p = base.predict_proba(pd.DataFrame({"offer_id": ["a", "b", "new"]}))[:, 1]
    np.testing.assert_allclose(p, [0.6, 0.1, 0.35])
    shrunk = OfferResponseRateBaseline(prior_strength=100).fit(X, y).predict_proba(X.head(1))[0, 1]
    assert 0.35 < shrunk < 0.6


# --- the offer model --------------------------------------------------------------------------------------
def test_one_offer_model_scores_an_offer_it_never_saw(offers: pd.DataFrame) -> None:
    """Trained without offer O08, the model still ranks customers for it from its attributes; the per-offer
    rate baseline can only give every customer the same number."""
    unseen = "O08"
    result = train(offers[offers["offer_id"] != unseen], "offers")
    assert not any(f == "offer_id" for f in result.features)
    assert {"offer_bonus_points", "offer_threshold"} <= set(result.features)
    assert result.metrics["val_roc_auc"] > result.metrics["baseline_val_roc_auc"] + 0.05

    new_rows = offers[(offers["offer_id"] == unseen) & (offers["as_of"] == offers["as_of"].max())]
    assert len(new_rows) > 100
    p = result.model.predict_proba(new_rows)[:, 1]
    assert roc_auc_score(new_rows["completed"], p) > 0.65
    baseline = result.baseline.predict_proba(new_rows)[:, 1]
    assert np.ptp(baseline) == 0.0


def test_offer_attributes_from_the_catalogue_and_the_customer_x_offer_frame() -> None:
    catalogue = pd.DataFrame(
        {
            "offer_id": ["M2", "CB"],
            "name": ["Double points", "Cashback"],
            "kind": ["multiplier", "cashback"],
            "multiplier": [Decimal("2.0000"), Decimal("1")],
            "bonus_points": [0, 300],
            "threshold": [None, Decimal("2500.00")],
            "categories": [["groceries", "fuel"], None],
            "txn_types": [None, ["purchase"]],
            "channels": [["app"], None],
            "duration_days": [14, 30],
            "cost": [Decimal("50.00"), Decimal("120.00")],
            "value": [Decimal("400.00"), Decimal("300.00")],
            "min_tier": [None, "silver"],
        }
    )
    attrs = offer_attributes(catalogue)
    assert all(c == "offer_id" or c.startswith("offer_") for c in attrs.columns)
    m2, cb = attrs.iloc[0], attrs.iloc[1]
    assert m2["offer_kind_multiplier"] == 1
    assert m2["offer_kind_cashback"] == 0
    assert m2["offer_multiplier"] == 2.0
    assert cb["offer_threshold"] == 2500.0
    assert m2["offer_threshold"] == 0.0
    assert m2["offer_category_groceries"] == 1
    assert m2["offer_category_travel"] == 0
    assert m2["offer_any_category"] == 0
    assert cb["offer_any_category"] == 1
    assert cb["offer_category_travel"] == 1
    assert cb["offer_txn_type_purchase"] == 1
    assert cb["offer_txn_type_transfer"] == 0
    assert m2["offer_channel_app"] == 1
    assert m2["offer_channel_web"] == 0
    assert cb["offer_min_tier"] == 1.0
    assert m2["offer_min_tier"] == 0.0
    assert all(pd.api.types.is_float_dtype(attrs[c]) for c in attrs.columns if c != "offer_id")

    customers = pd.DataFrame(
        {"customer_id": ["c1", "c2", "c3"], "as_of": pd.Timestamp("2026-05-31", tz="UTC")}
    )
    crossed = customer_offer_frame(customers, attrs)
    assert len(crossed) == 6
    assert set(crossed["offer_id"]) == {"M2", "CB"}
    with pytest.raises(InvalidInput, match="kind"):
        offer_attributes(catalogue.assign(kind=["multiplier", "lottery"]))


def test_offer_frame_fixture_matches_the_catalogue_shape() -> None:
    frame = offer_frame(n_customers=50, n_cutoffs=2)
    assert set(frame["offer_id"]) <= set(OFFERS["offer_id"])
    assert frame.groupby(["customer_id", "as_of"]).size().eq(3).all()


# --- metrics ----------------------------------------------------------------------------------------------
def test_metrics_on_a_hand_example() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    m = classification_metrics(y, p)
    assert m["lift_at_10pct"] == pytest.approx(1 / 0.3)  # top 1 of 10 is positive; base rate 0.3
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert 0.5 < m["roc_auc"] <= 1
    with pytest.raises(InvalidInput, match="one label class"):
        classification_metrics(np.zeros(5), np.full(5, 0.2))


def test_lift_shares_tied_scores_pro_rata() -> None:
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 10)
    constant = np.full(100, 0.5)
    assert lift_at(y, constant, 0.1) == pytest.approx(1.0)


def test_is_better_knows_the_direction_of_each_metric() -> None:
    assert is_better("val_roc_auc", 0.8, 0.7)
    assert not is_better("val_roc_auc", 0.7, 0.7)
    assert is_better("val_log_loss", 0.4, 0.5)
    assert not is_better("val_brier", 0.3, 0.2)
    assert not is_better("val_roc_auc", 0.71, 0.70, min_delta=0.02)


def test_offer_outcome_columns_are_never_features(offers: pd.DataFrame) -> None:
    """The pipelines' offer frame carries ``viewed`` (after the send, like the label): it must not leak in."""
    frame = offers.assign(viewed=np.maximum(offers["completed"], offers["noise_a"] > 1).astype(np.int64))
    result = train(frame, "offers")
    assert "viewed" not in result.features
    assert "completed" not in result.features
    with pytest.raises(InvalidInput, match="'viewed' is an outcome of the offers task"):
        train(frame, "offers", features=["txn_count_90d", "viewed"])


def test_integer_coded_categories_can_be_split_as_categories(churn: pd.DataFrame) -> None:
    """An unordered code (region) whose effect is not monotone in the code: categorical splits find it."""
    rng = np.random.default_rng(2)
    region = rng.integers(-1, 8, len(churn))  # -1 = unknown, as the pipelines code it
    risky = np.isin(region, [1, 4, 6])
    flip = rng.random(len(churn)) < 0.25
    frame = churn.assign(region=region, churned=np.where(flip, risky, churn["churned"]).astype(np.int8))
    result = train(frame, "churn", params={"categorical": ["region"]})
    model = result.model.booster_.dump_model()
    decisions = {
        node.get("decision_type") for tree in model["tree_info"] for node in _nodes(tree["tree_structure"])
    }
    assert "==" in decisions  # categorical splits were used
    scorer = result.scorer()
    np.testing.assert_allclose(
        scorer.predict_proba(scorer.matrix(result.validation)), result.proba_val, rtol=0, atol=1e-12
    )


def _nodes(node: dict) -> list[dict]:
    if "split_index" not in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]
