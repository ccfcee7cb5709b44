"""The scoring job's pure steps on tiny hand-made values: the file's rows (churn alone too), the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.jobs.scoring import NO_OFFER_CHAMPION, ScoreReport
from models.jobs.scoring_steps import TopOffers, score_frame


def test_score_frame_names_the_top_offers_and_leaves_missing_ones_empty() -> None:
    scores = TopOffers(
        churn=np.array([0.2, 0.7]),
        top=np.array([[1, -1], [0, 1]]),
        propensity=np.array([[0.3, np.nan], [0.4, 0.1]]),
        uplift=np.full((2, 2), np.nan),
        expected_value=np.array([[5.0, np.nan], [2.0, 1.0]]),
    )
    frame = score_frame(pd.Series(["C1", "C2"]), scores, ["A", "B"], np.array([1.0, 2.0]), ["x", None])
    assert list(frame.columns[:5]) == [
        "customer_id",
        "churn_probability",
        "bonus_multiplier",
        "offer_1",
        "offer_1_propensity",
    ]
    assert frame["offer_1"].tolist() == ["B", "A"]
    assert frame["offer_2"].isna().tolist() == [True, False]
    assert frame["offer_2"].iloc[1] == "B"
    assert frame["offer_2_expected_value"].tolist()[1] == 1.0
    assert frame["churn_reasons"].iloc[0] == "x"
    assert frame["churn_reasons"].isna().tolist() == [False, True]


def test_score_frame_of_churn_alone_has_no_offer_column() -> None:
    scores = TopOffers(
        churn=np.array([0.2, 0.7]),
        top=np.full((2, 3), -1),
        propensity=np.full((2, 3), np.nan),
        uplift=np.full((2, 3), np.nan),
        expected_value=np.full((2, 3), np.nan),
    )
    frame = score_frame(pd.Series(["C1", "C2"]), scores, None, np.array([1.0, 1.5]), [None, "x"])
    assert list(frame.columns) == ["customer_id", "churn_probability", "bonus_multiplier", "churn_reasons"]


def test_score_report_of_churn_alone_says_why_and_counts_no_offers(tmp_path: Path) -> None:
    report = ScoreReport(
        as_of=pd.Timestamp("2026-12-08", tz="UTC"),
        out=tmp_path / "s.csv",
        customers=2,
        offers=0,
        versions={"loyalty-churn": "1"},
        multiplier_counts={1.0: 2},
        threshold=1.0,
        multiplier_file=tmp_path / "m.json",
        reasons=2,
        offers_absent=NO_OFFER_CHAMPION,
    )
    lines = report.lines()
    assert lines[0] == f"scored 2 customers as of 2026-12-08 (churn only) -> {tmp_path / 's.csv'}"
    assert lines[1] == f"{NO_OFFER_CHAMPION}; no offer columns written"
    assert lines[2] == "models: loyalty-churn v1"
