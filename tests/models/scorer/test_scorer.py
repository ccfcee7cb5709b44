"""The scorer: same probabilities as the trained and the logged model, batch and one row; champion loading."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput, Unavailable
from mlflow import MlflowClient
from models.estimators import TrainingResult, train
from models.registry import artifact_root, load_champion, log_training
from models.scorer import META_FILE, Scorer


@pytest.fixture
def trained(churn: pd.DataFrame) -> TrainingResult:
    return train(churn, "churn")


def test_scorer_matches_the_trained_and_the_logged_model_in_batch_and_one_row(
    trained: TrainingResult, mlflow_store: str
) -> None:
    report = log_training(trained)
    champion = load_champion("loyalty-churn")
    assert champion.version == report.version == "1"
    assert champion.feature_names == tuple(trained.features)
    assert champion.run_id == report.run_id

    frame = trained.validation
    matrix = champion.scorer.matrix(frame)
    batch = champion.scorer.predict_proba(matrix)
    in_memory = trained.model.predict_proba(frame)[:, 1]
    logged = np.asarray(mlflow.pyfunc.load_model("models:/loyalty-churn@champion").predict(frame))
    np.testing.assert_allclose(batch, in_memory, rtol=0, atol=1e-9)
    np.testing.assert_allclose(batch, logged, rtol=0, atol=1e-9)
    np.testing.assert_allclose(batch, trained.proba_val, rtol=0, atol=1e-9)

    rows = np.linspace(0, len(matrix) - 1, 50).astype(int)
    one = np.array([champion.scorer.predict_one(matrix[i]) for i in rows])
    np.testing.assert_allclose(one, batch[rows], rtol=0, atol=1e-9)
    assert isinstance(champion.scorer.predict_one(matrix[0].tolist()), float)


def test_scorer_takes_float32_and_rejects_the_wrong_width(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    matrix = scorer.matrix(trained.validation)
    as32 = matrix.astype(np.float32)
    np.testing.assert_allclose(
        scorer.predict_proba(as32), scorer.predict_proba(as32.astype(np.float64)), rtol=0, atol=1e-12
    )
    with pytest.raises(InvalidInput, match=f"{len(trained.features)} columns"):
        scorer.predict_proba(matrix[:, :-1])
    with pytest.raises(InvalidInput, match="feature values"):
        scorer.predict_one(matrix[0, :-1])
    with pytest.raises(InvalidInput, match="missing feature column"):
        scorer.matrix(trained.validation.drop(columns=["days_since_last_txn"]))


def test_scorer_handles_missing_values_like_the_model(trained: TrainingResult) -> None:
    scorer = trained.scorer()
    frame = trained.validation.head(20).copy()
    frame["spend_trend_30d"] = np.nan
    np.testing.assert_allclose(
        scorer.predict_proba(scorer.matrix(frame)), trained.model.predict_proba(frame)[:, 1], atol=1e-12
    )


def test_scorer_files_round_trip(trained: TrainingResult, tmp_path: Path) -> None:
    scorer = trained.scorer()
    scorer.save(tmp_path)
    again = Scorer.from_dir(tmp_path)
    matrix = scorer.matrix(trained.validation)
    np.testing.assert_array_equal(again.predict_proba(matrix), scorer.predict_proba(matrix))
    assert again.features == scorer.features
    assert again.reference == scorer.reference
    assert again.meta["task"] == "churn"


def test_load_champion_without_a_champion_raises_unavailable(
    trained: TrainingResult, mlflow_store: str
) -> None:
    with pytest.raises(Unavailable, match="no 'champion' version of model 'loyalty-churn'"):
        load_champion("loyalty-churn")
    log_training(trained, promote=False)  # registered, never promoted
    with pytest.raises(Unavailable, match="no 'champion' version"):
        load_champion("loyalty-churn")


def test_load_champion_with_a_broken_artifact_raises_unavailable(
    trained: TrainingResult, mlflow_store: str
) -> None:
    log_training(trained)
    root = artifact_root(mlflow_store)
    assert root is not None
    (meta,) = root.rglob(META_FILE)
    meta.write_text("{not json", encoding="utf-8")
    with pytest.raises(Unavailable, match=r"version 1 .*is broken"):
        load_champion("loyalty-churn")
    meta.unlink()
    with pytest.raises(Unavailable, match=r"has no booster\.txt/scorer\.json"):
        load_champion("loyalty-churn")


def test_a_broken_champion_does_not_block_a_new_model(trained: TrainingResult, mlflow_store: str) -> None:
    log_training(trained)
    root = artifact_root(mlflow_store)
    assert root is not None
    (booster,) = root.rglob("booster.txt")
    booster.write_text("tree\nnot a model", encoding="utf-8")
    report = log_training(trained)
    assert report.promoted
    assert report.reason.startswith("promoted (champion v1 could not be scored on this holdout: ")
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    assert str(client.get_model_version_by_alias("loyalty-churn", "champion").version) == "2"
    assert load_champion("loyalty-churn").version == "2"


def test_an_unreachable_registry_is_not_mistaken_for_no_champion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(
        Unavailable, match=r"cannot (query|reach) the model registry \(http://127\.0\.0\.1:9\)"
    ):
        load_champion("loyalty-churn", tracking_uri="http://127.0.0.1:9")
