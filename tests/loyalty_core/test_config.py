"""Settings: the Spark master, MLflow's store and the job parameters file come from the environment too."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_core import DEFAULT_JOB_PARAMS, REPO_ROOT, Settings


def test_settings_defaults_work_from_a_fresh_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOYALTY_SPARK_MASTER", "MLFLOW_TRACKING_URI", "LOYALTY_JOB_PARAMS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.spark_master is None
    assert settings.mlflow_tracking_uri is None
    assert settings.job_params == DEFAULT_JOB_PARAMS == REPO_ROOT / "models" / "jobs" / "parameters.toml"


def test_settings_read_mlflows_own_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOYALTY_SPARK_MASTER", "spark://host:7077")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("LOYALTY_JOB_PARAMS", str(tmp_path / "params.toml"))
    settings = Settings()
    assert settings.spark_master == "spark://host:7077"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.job_params == tmp_path / "params.toml"
