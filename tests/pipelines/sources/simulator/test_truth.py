"""The truth written beside the history is consistent with it."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from tests.pipelines.sources.simulator.conftest import PURCHASE_CATEGORIES, History


def test_truth_tables_are_consistent(history: History) -> None:
    truth, effects = history.truth, history.effects
    tastes = truth[[f"taste_{c}" for c in PURCHASE_CATEGORIES]].sum(axis=1)
    assert np.allclose(tastes, 1.0)
    assert set(truth["segment"]) == {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}
    assert truth["salary_day"].between(1, 28).all()
    churned = truth["churn_type"].notna()
    assert truth["churn_decay"].notna().all()  # for everyone, not only those who churned in the history
    assert (truth.loc[churned, "churn_decay"] == (truth.loc[churned, "churn_type"] == "decay")).all()
    assert len(effects) == 1500 * len(history.offers)
    p = effects[["p_complete_treated", "p_complete_control", "p_meet_treated"]]
    assert ((p >= 0) & (p <= 1)).all().all()
    assert np.allclose(effects["uplift"], effects["p_complete_treated"] - effects["p_complete_control"])
    value = effects["offer_id"].map(history.offers["value"].map(float))
    cost = effects["offer_id"].map(history.offers["cost"].map(float))
    eiv = effects["uplift"] * value - effects["p_complete_treated"] * cost
    assert np.allclose(effects["expected_incremental_value"], eiv)
    info = effects["offer_id"].map(history.offers["kind"]) == "informational"
    assert (effects.loc[info, ["p_complete_treated", "p_complete_control"]] == 0).all().all()
    # Persuadables gain from offers more than sure things, who would have bought anyway.
    seg = effects["customer_id"].map(truth.set_index("customer_id")["segment"])
    gain = effects.loc[~info, "incremental_uplift"].groupby(seg[~info]).mean()
    assert gain["persuadable"] > 0.02 > abs(gain["sure_thing"])
    # Every incremental transaction recorded in the truth exists.
    extra = pq.read_table(history.path / "truth" / "decisions.parquet").to_pandas()
    ids = extra["incremental_transaction_id"].dropna()
    assert len(ids) > 50
    assert ids.isin(history.txns["transaction_id"]).all()
