"""The uplift job's pieces that need no ledger: the learner's target and the gap to the simulator's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from loyalty_core import InvalidInput
from models.evaluation import gap_to_truth
from models.jobs import fit_uplift, load_job_params
from models.jobs.uplift_steps import selection_metrics, split_campaigns
from models.registry import TARGET, scorers_of
from models.registry import decide_uplift_promotion as promotion


def campaign_rows(n: int = 6000, *, seed: int = 3, effect: float = 0.0) -> pd.DataFrame:
    """``uplift_frame``-shaped rows of one offer: half sent at random. Sending raises P(met) by ``effect``
    where x > 0; a sent customer completes only if they also activate (30 %), whatever they buy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < 0.5
    p_met = 0.4 + 0.2 * np.tanh(x) + np.where(treated & (x > 0), effect, 0.0)
    met = rng.random(n) < p_met
    activated = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "offer_id": "BONUS",
            "x": x,
            "treated": treated.astype(np.int64),
            "probability": 0.5,
            "outcome": np.where(treated, met & activated, met).astype(np.int64),
            "met": met.astype(np.int64),
        }
    )


def test_the_uplift_learner_compares_both_arms_on_meeting_the_condition() -> None:
    """Customers who buy anyway but never activate are not harmed by the offer: with no effect on what they
    buy, the predicted uplift is about 0 (comparing completions if sent with purchases if not gives -0.28)."""
    assert TARGET == "met"
    rows = campaign_rows()
    uplift = fit_uplift(rows, ["x"], load_job_params().uplift.model).predict_uplift(rows)
    assert abs(float(np.mean(uplift))) < 0.05
    # and where sending does change behaviour, the learner ranks those customers first
    rows = campaign_rows(effect=0.3)
    uplift = fit_uplift(rows, ["x"], load_job_params().uplift.model).predict_uplift(rows)
    assert roc_auc_score(rows["x"] > 0, uplift) > 0.8
    assert float(np.mean(uplift[rows["x"] > 0])) == pytest.approx(0.3, abs=0.08)


def test_gap_to_truth_compares_on_the_rows_the_truth_covers() -> None:
    rows = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"],
            "as_of": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1])
    model = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.5, 0.4, 0.3, 0.35, 0.45, 0.99])
    # the truth knows every customer but the last (whom the model ranks perfectly) and ranks them all right
    truth = pd.DataFrame({"customer_id": list("abcdefghijk"), "p_true": np.where(y[:11] == 1, 0.8, 0.1)})
    got = gap_to_truth(rows, y, model, truth, "p_true")
    assert got["val_truth_rows"] == 11
    assert got["val_roc_auc_truth"] == pytest.approx(1.0)
    assert got["val_roc_auc_model_on_truth_rows"] == pytest.approx(roc_auc_score(y[:11], model[:11]))
    assert got["val_roc_auc_model_on_truth_rows"] != pytest.approx(roc_auc_score(y, model))
    assert got["val_roc_auc_gap_to_truth"] == pytest.approx(
        got["val_roc_auc_truth"] - got["val_roc_auc_model_on_truth_rows"]
    )
    # pairs: the keys are every truth column but the probability
    pairs = rows.assign(offer_id="O1")
    truth_pairs = truth.assign(offer_id="O1")
    assert gap_to_truth(pairs, y, model, truth_pairs, "p_true") == got
    with pytest.raises(InvalidInput, match="does not describe this ledger"):
        gap_to_truth(pairs, y, model, truth_pairs.assign(offer_id="O2"), "p_true")


@pytest.mark.parametrize(
    ("qini", "by_propensity", "champion", "promoted", "says"),
    [
        (
            0.004,
            0.001,
            None,
            True,
            "promoted (no champion yet; Qini 0.0040 beats ranking by propensity 0.0010",
        ),
        (0.0003, 0.0011, None, False, "does not beat ranking by propensity (0.0011)"),
        (-0.0013, -0.0004, None, False, "does not beat random targeting (0; ranking by propensity: -0.0004)"),
        (0.002, -0.001, None, True, "promoted (no champion yet"),
        (0.001, 0.001, None, False, "does not beat ranking by propensity"),  # a tie adds nothing
        (0.0005, 0.001, ("3", 0.0001), False, "champion v3 stays"),
        (0.004, 0.001, ("3", 0.005), False, "not promoted (Qini 0.0040 <= champion v3 0.0050"),
        (0.006, 0.001, ("3", 0.005), True, "promoted (Qini 0.0060 > champion v3 0.0050)"),
    ],
)
def test_an_uplift_model_is_promoted_only_when_it_beats_propensity_chance_and_the_champion(
    qini: float, by_propensity: float, champion: tuple[str, float] | None, promoted: bool, says: str
) -> None:
    version, champion_qini = champion if champion is not None else (None, None)
    decision, reason = promotion(
        qini, by_propensity, promote=True, champion_version=version, champion_qini=champion_qini
    )
    assert decision is promoted
    assert says in reason


def test_promotion_can_be_switched_off() -> None:
    decision, reason = promotion(0.5, 0.0, promote=False, champion_version=None, champion_qini=None)
    assert not decision
    assert reason.startswith("not promoted (promotion disabled")


def test_the_job_chooses_its_learner_by_cross_validated_qini_on_the_training_campaigns() -> None:
    """Two campaigns: the selector sees only the first (the second is the holdout), chooses among the
    configured candidates, and the job's metrics carry the table and how faithfully the pair is served."""
    params = load_job_params().uplift
    first, second = campaign_rows(3000, seed=4, effect=0.3), campaign_rows(3000, seed=5, effect=0.3)
    frame = pd.concat(
        [first.assign(as_of=pd.Timestamp("2026-09-01")), second.assign(as_of=pd.Timestamp("2026-10-01"))],
        ignore_index=True,
    )
    split = split_campaigns(frame, [pd.Timestamp("2026-09-01"), pd.Timestamp("2026-10-01")])
    selector = fit_uplift(split.train, ["x"], params.model, candidates=params.candidates, folds=params.folds)
    assert selector.chosen_ in params.candidates
    assert len(split.train) == 3000
    assert selector.cv_table_["candidate"].tolist() == list(params.candidates)
    metrics = selection_metrics(selector, split.train, ["x"], scorers_of(selector, split.train))
    assert set(metrics) == {
        *(f"cv_qini_{name}_{stat}" for name in params.candidates for stat in ("mean", "sd")),
        "uplift_served_spearman",
    }
    assert metrics["uplift_served_spearman"] > 0.9
    # where sending works (x > 0) the chosen learner ranks those customers first, on the unseen campaign
    assert roc_auc_score(split.holdout["x"] > 0, selector.predict_uplift(split.holdout)) > 0.75
