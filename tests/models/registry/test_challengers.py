"""Challengers trained outside the job register apart, so the job's model's latest version stays the job's."""

from __future__ import annotations

import pandas as pd
import pytest

from loyalty_core import InvalidInput
from mlflow import MlflowClient
from models.estimators import train
from models.registry import challenger_model, load_card, log_training

WEAK = ["noise_a", "noise_b", "points_balance"]


def test_a_challenger_registers_apart_and_is_judged_against_the_champion(
    churn: pd.DataFrame, mlflow_store: str
) -> None:
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    job = log_training(train(churn, "churn"))
    challenger = log_training(
        train(churn, "churn", features=WEAK), promote=False, register_as=challenger_model("loyalty-churn")
    )
    # MLflow's "latest version" of the job's model is still the job's, and so is the champion
    latest = client.get_latest_versions("loyalty-churn")
    assert [(str(v.version), v.run_id) for v in latest] == [(job.version, job.run_id)]
    assert str(client.get_model_version_by_alias("loyalty-churn", "champion").version) == job.version
    # the challenger is registered under its own name, tagged with whose challenger it is
    assert challenger.model_name == "loyalty-churn-challengers"
    version = client.get_model_version("loyalty-churn-challengers", challenger.version)
    assert version.run_id == challenger.run_id
    assert version.tags["challenger_of"] == "loyalty-churn"
    # and it was compared with the job's champion on its own holdout
    assert "champion_val_roc_auc" in client.get_run(challenger.run_id).data.metrics
    card = load_card(challenger.run_id)
    assert card.startswith(
        f"# Model card: loyalty-churn-challengers v{challenger.version} (a challenger of loyalty-churn)\n"
    )


def test_a_challenger_registered_apart_cannot_be_promoted(churn: pd.DataFrame, mlflow_store: str) -> None:
    with pytest.raises(InvalidInput, match="cannot be promoted"):
        log_training(train(churn, "churn", features=WEAK), register_as="loyalty-churn-challengers")
