"""Reason codes: the top contributions behind a score, in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.reasons import PHRASES, describe, explain, humanize
from models.training import TrainingResult, train


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
    assert phrases["days_since_last_txn"] == "has not transacted for a while"
    assert phrases["spend_trend_30d"] == "spent less in the last 30 days than before"
    assert all(r.contribution > 0 for r in reasons)
    assert reasons[0].contribution >= reasons[1].contribution

    # and the ranking is exactly the largest positive pred_contrib values, for every row
    sample = scorer.matrix(trained.validation.head(300))
    contributions = scorer.contributions(sample)[:, :-1]
    for row, got in zip(contributions, scorer.explain(sample, k=3), strict=True):
        expected = [scorer.features[j] for j in np.argsort(-row)[:3] if row[j] > 0]
        assert [r.feature for r in got] == expected


def test_reasons_towards_down_and_both(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    typical = {f: trained.model.reference_[f] for f in trained.features}
    loyal = dict(typical, days_since_last_txn=0.5, txn_count_90d=90.0, spend_trend_30d=2.0)
    matrix = np.array([[loyal[f] for f in scorer.features]])
    (down,) = scorer.explain(matrix, k=3, towards="down")
    assert all(r.contribution < 0 for r in down)
    assert "transacted recently" in {r.phrase for r in down}
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
    assert describe("txn_count_90d", 3.0, 10.0, phrases={}) == (
        "number of transactions in the last 90 days is lower than usual"
    )
    assert describe("fuel_spend_1w", 900.0, 100.0) == "fuel spend in the last 1 week is higher than usual"
    assert describe("premium_card", 1.0, 0.0) == "has premium card"
    assert describe("premium_card", 0.0, 0.0) == "does not have premium card"
    assert describe("spend_trend_30d", None, 0.0) == "no spend trend in the last 30 days on record"
    assert describe("spend_trend_30d", float("nan"), 0.0) == "no spend trend in the last 30 days on record"
    assert describe("region", 3.0, 0.0) == "where the customer lives"
    assert describe("tenure_days", 300.0, 300.0) == "tenure days is at a typical level"


def test_hand_written_phrases_have_both_directions() -> None:
    for feature, (up, down) in PHRASES.items():
        assert up, feature
        assert down, feature
        assert up != down, feature
        assert describe(feature, 2.0, 1.0) == up
        assert describe(feature, 0.5, 1.0) == down


def test_explain_checks_shapes() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        explain(np.zeros((2, 3)), np.zeros((2, 3)), ["a", "b", "c"])
    reasons = explain(
        np.array([[0.5, -0.2, 0.0, 1.0]]), np.array([[1.0, 2.0, np.nan]]), ["a", "b", "c"], {"a": 0.0}
    )
    assert [r.feature for r in reasons[0]] == ["a"]
    assert reasons[0][0].as_dict() == {
        "feature": "a",
        "phrase": "has a",
        "contribution": 0.5,
        "value": 1.0,
    }


def test_explain_on_a_frame_row_reads_like_a_sentence(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    frame = pd.DataFrame([{f: trained.model.reference_[f] for f in trained.features}]).assign(
        days_since_last_txn=60.0
    )
    (reasons,) = scorer.explain(scorer.matrix(frame), k=1)
    assert reasons[0].phrase == "has not transacted for a while"
    assert reasons[0].value == 60.0
