"""An uplift run records what the churn and offer runs do: plots and a model card beside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow import MlflowClient
from models.estimators import ipw_weights
from models.evaluation import qini_coefficient
from models.jobs import fit_uplift, load_job_params
from models.registry import TARGET, Holdout, UpliftReport, load_card, log_uplift, scorers_of
from tests.models.jobs.test_uplift import campaign_rows
from tests.models.registry.test_tracking import _artifacts


def test_uplift_run_logs_plots_and_a_model_card(mlflow_store: str) -> None:
    rows = campaign_rows(4000, effect=0.3)
    train, hold = rows.iloc[:3000].reset_index(drop=True), rows.iloc[3000:].reset_index(drop=True)
    selector = fit_uplift(train, ["x"], load_job_params().uplift.model)
    scorers = scorers_of(selector, train)
    x = hold[["x"]].to_numpy(dtype=np.float64)
    predicted = scorers.predict(x)
    y, treated = hold[TARGET].to_numpy(), hold["treated"].to_numpy()
    weight = ipw_weights(treated.astype(bool), hold["probability"].to_numpy(dtype=np.float64))
    propensity = 1 / (1 + np.exp(-x[:, 0]))  # a ranking by "who will buy", blind to the effect
    report = UpliftReport(
        rows=len(rows),
        train_rows=len(train),
        holdout_rows=len(hold),
        holdout_cutoff="2026-10-01",
        metrics={
            "uplift_qini": qini_coefficient(y, predicted, treated, weight),
            "uplift_auuc": 0.01,
            "uplift_qini_propensity": qini_coefficient(y, propensity, treated, weight),
            **selector.cv_metrics(),
        },
        chosen=selector.chosen_,
        cv_table=selector.cv_table_,
    )
    holdout = Holdout(
        labels=pd.DataFrame(),
        features=pd.DataFrame(),
        catalogue=pd.DataFrame(),
        y=y,
        treated=treated,
        weight=weight,
        scores={"uplift model": predicted, "propensity model": propensity},
    )
    log_uplift(report, scorers, holdout, hold, ["x"], tracking_uri=mlflow_store)
    assert report.run_id is not None
    files = _artifacts(MlflowClient(tracking_uri=mlflow_store), report.run_id)
    assert {
        "plots/qini.png",
        "plots/feature_importance_treated.png",
        "plots/feature_importance_control.png",
        "model_card.md",
        "features.json",
        "uplift_cv.csv",
    } <= files
    run = MlflowClient(tracking_uri=mlflow_store).get_run(report.run_id)
    assert run.data.params["uplift.chosen"] == selector.chosen_
    for name in selector.candidates:
        assert run.data.metrics[f"cv_qini_{name}_mean"] == selector.cv_metrics()[f"cv_qini_{name}_mean"]
        assert f"cv_qini_{name}_sd" in run.data.metrics
    card = load_card(report.run_id, tracking_uri=mlflow_store)
    assert card.startswith(f"# Model card: loyalty-offer-uplift v{report.version}\n")
    assert f"**promotion: {report.reason}**" in card
    assert f"| this model | {report.metrics['uplift_qini']:.4f} | 0.0100 |" in card
    assert "holdout (out of time): the campaign of 2026-10-01" in card
    assert "treated arm `x`" in card
