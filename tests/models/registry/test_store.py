"""Where the MLflow store is, whatever the working directory (issue 16: notebooks 03-05 found no model)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlflow
from models.estimators import train
from models.registry import artifact_root, load_champion, log_training, resolve_tracking_uri


def test_a_champion_loads_from_the_given_store_in_a_process_that_never_set_mlflows_uris(
    churn: pd.DataFrame, mlflow_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook's kernel runs in notebooks/ and never trains: MLflow's own process-wide registry there is
    its default, a ``mlflow.db`` in the working directory. Loading must ask only the store it was given."""
    report = log_training(train(churn, "churn"))
    assert report.promoted
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(None)  # as in a fresh process: log_training left them on the store
    mlflow.set_registry_uri(None)

    champion = load_champion("loyalty-churn", tracking_uri=mlflow_store)

    assert champion.version == report.version
    assert sorted(p.name for p in elsewhere.iterdir()) == [], "nothing is written in the working directory"


def test_a_relative_store_the_user_names_stays_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the defaults are anchored to the repository: ``sqlite:///mlflow/mlflow.db`` set by a user
    means what it means to MLflow, a file under the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow/mlflow.db")
    assert resolve_tracking_uri() == "sqlite:///mlflow/mlflow.db"
    assert artifact_root(resolve_tracking_uri()) == tmp_path / "mlflow" / "artifacts"
