"""Reason codes: the top contributions behind a score, in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import TrainingResult, train
from models.reasons import (
    FLAGS,
    MIN_CONTRIBUTION,
    PHRASES,
    describe,
    explain,
    humanize,
)


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    from tests.models.conftest import churn_frame

    return train(churn_frame(n_customers=3000), "churn")


def test_contributions_add_up_to_the_raw_score(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    matrix = scorer.matrix(trained.validation.head(200))
    np.testing.assert_allclose(scorer.contributions(matrix).sum(axis=1), scorer.margin(matrix), atol=1e-9)


def test_reason_codes_name_the_top_contributing_features_in_words(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    typical = {f: trained.model.reference_[f] for f in trained.features}
    # a member silent for 40 days with a falling spend trend: the churn score should say so
    at_risk = dict(typical, days_since_last_txn=40.0, spend_trend_30d=-2.0)
    matrix = np.array([[at_risk[f] for f in scorer.features]])
    (reasons,) = scorer.explain(matrix, k=2)
    assert {r.feature for r in reasons} == {"days_since_last_txn", "spend_trend_30d"}
    phrases = {r.feature: r.phrase for r in reasons}
    assert phrases["days_since_last_txn"] == "has gone longer without a transaction than most customers"
    assert phrases["spend_trend_30d"] == "spent less in the last 30 days than in the months before"
    assert all(r.contribution > 0 for r in reasons)
    assert reasons[0].contribution >= reasons[1].contribution

    # and the ranking is the largest positive pred_contrib values, for every row: down to MIN_CONTRIBUTION,
    # skipping values at the reference (no phrase says anything about them)
    sample = scorer.matrix(trained.validation.head(300))
    contributions = scorer.contributions(sample)[:, :-1]
    for x, row, got in zip(sample, contributions, scorer.explain(sample, k=3), strict=True):
        ranked = [j for j in np.argsort(-row, kind="stable") if row[j] >= MIN_CONTRIBUTION]
        expected = [
            scorer.features[j]
            for j in ranked
            if np.isnan(x[j]) or x[j] != scorer.reference[scorer.features[j]]
        ][:3]
        assert [r.feature for r in got] == expected


def test_reasons_towards_down_and_both(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    typical = {f: trained.model.reference_[f] for f in trained.features}
    loyal = dict(typical, days_since_last_txn=0.5, txn_count_90d=90.0, spend_trend_30d=2.0)
    matrix = np.array([[loyal[f] for f in scorer.features]])
    (down,) = scorer.explain(matrix, k=3, towards="down")
    assert all(r.contribution < 0 for r in down)
    assert "transacted more recently than most customers" in {r.phrase for r in down}
    (both,) = scorer.explain(matrix, k=len(scorer.features), towards="both")
    sizes = [abs(r.contribution) for r in both]
    assert sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError, match="towards"):
        scorer.explain(matrix, towards="sideways")


def test_generic_phrases_are_built_from_the_feature_name() -> None:
    assert humanize("txn_count_90d") == "number of transactions in the last 90 days"
    assert humanize("avg_amt_30d") == "average amount in the last 30 days"
    assert humanize("txn_amount_mean_30d") == "average transaction amount in the last 30 days"
    assert humanize("category_groceries_share_365d") == "share of groceries in the last 365 days"
    assert humanize("days_since_last_txn") == "days since last transaction"
    assert humanize("share_groceries_12m") == "share of groceries in the last 12 months"
    # a feature no phrase was written for yet still reads as words, never as its column name
    assert describe("txn_count_90d", 3.0, 10.0, phrases={}) == (
        "number of transactions in the last 90 days: lower than for most customers"
    )
    assert describe("fuel_spend_1w", 900.0, 100.0) == (
        "fuel spend in the last 1 week: higher than for most customers"
    )
    assert describe("fuel_spend_1w", None, 100.0) == "fuel spend in the last 1 week: not on record"
    # a share at the median is no "does not have share of channel branch": at the median, nothing to say
    assert describe("channel_branch_share_365d", 0.0, 0.0) is None
    assert describe("tenure_days", 300.0, 300.0) is None
    assert (
        describe("spend_trend_30d", None, 0.0)
        == "has too little history to compare their recent spending with"
    )
    assert describe("spend_trend_30d", float("nan"), 0.0) == (
        "has too little history to compare their recent spending with"
    )
    assert describe("region", 3.0, 0.0) == "the region they live in"
    # yes/no inputs read 1 and 0, whatever the median
    assert describe("offer_kind_cashback", 1.0, 1.0) == "it is a cashback offer"
    assert describe("offer_kind_cashback", 0.0, 0.0) == "it is not a cashback offer"


def test_hand_written_phrases_have_both_directions() -> None:
    for feature, (up, down) in PHRASES.items():
        assert up, feature
        assert down, feature
        assert up != down, feature
        high, low = (1.0, 0.0) if feature in FLAGS else (2.0, 0.5)
        assert describe(feature, high, 1.0) == up
        assert describe(feature, low, 1.0) == down


def test_explain_checks_shapes() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        explain(np.zeros((2, 3)), np.zeros((2, 3)), ["a", "b", "c"])
    reasons = explain(
        np.array([[0.5, -0.2, 0.0, 1.0]]), np.array([[1.0, 2.0, np.nan]]), ["a", "b", "c"], {"a": 0.0}
    )
    assert [r.feature for r in reasons[0]] == ["a"]
    assert reasons[0][0].as_dict() == {
        "feature": "a",
        "phrase": "a: higher than for most customers",
        "contribution": 0.5,
        "value": 1.0,
    }


def test_explain_on_a_frame_row_reads_like_a_sentence(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    frame = pd.DataFrame([{f: trained.model.reference_[f] for f in trained.features}]).assign(
        days_since_last_txn=60.0
    )
    (reasons,) = scorer.explain(scorer.matrix(frame), k=1)
    assert reasons[0].phrase == "has gone longer without a transaction than most customers"
    assert reasons[0].value == 60.0


def test_a_faint_contribution_is_no_reason() -> None:
    """A churn probability of 0.0097 was explained by "buys like a customer who has already left": the top
    positive contribution, however small. Reasons are chosen by size: below MIN_CONTRIBUTION, none."""
    features = ["bgnbd_p_alive", "days_since_last_txn"]
    reference = {"bgnbd_p_alive": 0.9, "days_since_last_txn": 10.0}
    low_risk = np.array([[0.85, 2.0]])  # a little below the median P(alive), transacted recently
    faint = np.array([[0.01, -0.8, -3.8]])  # margin -4.59: P(churn) 0.0100
    assert explain(faint, low_risk, features, reference) == [[]]
    (down,) = explain(faint, low_risk, features, reference, towards="down")
    assert [r.phrase for r in down] == ["transacted more recently than most customers"]
    # the same customer with a real push upwards: the phrase says what the value says, no more
    strong = np.array([[0.6, -0.8, -3.8]])
    (up,) = explain(strong, low_risk, features, reference)
    assert [r.phrase for r in up] == ["buys less regularly, for their history, than most customers"]


def test_a_value_at_the_median_gives_its_place_to_the_next() -> None:
    features = ["channel_branch_share_365d", "tenure_days", "txn_count_30d"]
    reference = {"channel_branch_share_365d": 0.0, "tenure_days": 400.0, "txn_count_30d": 6.0}
    row = np.array([[0.0, 100.0, 2.0]])
    contributions = np.array([[0.9, 0.4, 0.2, -1.0]])
    (reasons,) = explain(contributions, row, features, reference, k=2)
    assert [r.phrase for r in reasons] == [
        "joined the programme more recently than most customers",
        "transacted less often in the last 30 days than most customers",
    ]
