"""The scoring job's pure steps on tiny hand-made values: the file's rows, and who gets reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
