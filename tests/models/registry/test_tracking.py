"""MLflow: what a run records, registration, and the champion alias moving only on the same holdout."""

from __future__ import annotations

from pathlib import Path

import mlflow.models
import pandas as pd
import pytest

from loyalty_core import REPO_ROOT, InvalidInput
from mlflow import MlflowClient
from models.estimators import train
from models.registry import (
    ChampionCheck,
    artifact_root,
    decide_promotion,
    default_tracking_uri,
    load_card,
    log_training,
    resolve_tracking_uri,
)

WEAK = ["noise_a", "noise_b", "points_balance"]  # no signal: a deliberately worse model on the same data


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            out |= _artifacts(client, run_id, item.path)
        else:
            out.add(item.path)
    return out


def test_default_store_is_the_repos_mlflow_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert (
        resolve_tracking_uri() == default_tracking_uri() == f"sqlite:///{REPO_ROOT / 'mlflow' / 'mlflow.db'}"
    )
    assert artifact_root(default_tracking_uri()) == REPO_ROOT / "mlflow" / "artifacts"
    assert not (REPO_ROOT / "mlflow" / "__init__.py").exists()  # it would shadow the mlflow package
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert resolve_tracking_uri() == "http://mlflow.internal:5000"
    assert artifact_root("http://mlflow.internal:5000") is None
    assert artifact_root("sqlite:///rel/x.db") == Path.cwd() / "rel" / "artifacts"


def test_a_run_logs_metrics_data_code_plots_card_and_a_registered_model(
    churn: pd.DataFrame, mlflow_store: str
) -> None:
    result = train(churn, "churn")
    report = log_training(result)
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    run = client.get_run(report.run_id)

    metrics = run.data.metrics
    for name in (
        "val_roc_auc",
        "val_pr_auc",
        "val_log_loss",
        "val_brier",
        "val_lift_at_10pct",
        "baseline_val_roc_auc",
        "baseline_val_pr_auc",
        "raw_val_brier",
    ):
        assert metrics[name] == pytest.approx(result.metrics[name])
    params = run.data.params
    assert params["data.sha256"] == result.data["sha256"]
    assert params["data.train_cutoffs"] == "2026-01-31,2026-02-28,2026-03-31"
    assert params["data.validation_cutoffs"] == "2026-04-30"
    assert params["data.calibration_cutoff"] == "2026-03-31"
    assert params["data.rows"] == "6000"
    assert params["model.learning_rate"] == "0.1"
    assert params["model.max_rounds"] == "300"
    tags = run.data.tags
    assert len(tags["code.git_commit"]) == 40
    assert tags["promotion"].startswith("promoted (no champion yet; val_roc_auc ")

    files = _artifacts(client, report.run_id)
    assert {
        "plots/calibration.png",
        "plots/gains_lift.png",
        "plots/feature_importance.png",
        "plots/shap_summary.png",
        "model_card.md",
        "features.json",
        "data.json",
    } <= files
    store_artifacts = artifact_root(mlflow_store)
    assert store_artifacts is not None
    assert (store_artifacts / "loyalty-churn").is_dir()

    version = client.get_model_version("loyalty-churn", report.version)
    assert report.version == "1"
    assert version.run_id == report.run_id
    assert str(client.get_model_version_by_alias("loyalty-churn", "champion").version) == "1"
    info = mlflow.models.get_model_info("models:/loyalty-churn/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == result.features
    assert info.saved_input_example_info is not None
    assert version.tags["promotion"] == report.reason

    card = load_card(report.run_id)
    assert "# Model card: loyalty-churn v1" in card
    assert "promotion: promoted (no champion yet" in card
    assert "## Intended use" in card
    assert "## Caveats" in card
    assert "2026-04-30" in card
    assert result.data["sha256"] in card
    assert f"| ROC AUC | {result.metrics['val_roc_auc']:.4f} |" in card


def test_champion_moves_only_when_the_challenger_wins_on_the_same_holdout(
    churn: pd.DataFrame, mlflow_store: str
) -> None:
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)

    weak = log_training(train(churn, "churn", features=WEAK))
    assert weak.promoted
    assert weak.version == "1"

    strong_result = train(churn, "churn")
    strong = log_training(strong_result)
    assert strong.promoted
    assert strong.version == "2"
    assert strong.reason.startswith(
        f"promoted (val_roc_auc {strong_result.metrics['val_roc_auc']:.4f} > champion v1 "
    )
    assert str(client.get_model_version_by_alias("loyalty-churn", "champion").version) == "2"

    worse_result = train(churn, "churn", features=WEAK)
    worse = log_training(worse_result)
    assert not worse.promoted
    assert worse.version == "3"
    assert str(client.get_model_version_by_alias("loyalty-churn", "champion").version) == "2"
    expected = (
        f"not promoted (val_roc_auc {worse_result.metrics['val_roc_auc']:.4f} <= champion v2 "
        f"{strong_result.metrics['val_roc_auc']:.4f} on this holdout)"
    )
    assert worse.reason == expected
    run = client.get_run(worse.run_id)
    assert run.data.tags["promotion"] == expected
    assert run.data.tags["promotion.decision"] == "rejected"
    assert client.get_model_version("loyalty-churn", "3").tags["promotion"] == expected
    assert f"promotion: {expected}" in load_card(worse.run_id)
    # the champion was re-scored on this run's holdout: same data, same number as its own run
    assert run.data.metrics["champion_val_roc_auc"] == pytest.approx(
        strong_result.metrics["val_roc_auc"], abs=1e-12
    )


def test_the_champion_is_judged_on_the_new_holdout_not_on_its_old_metrics(
    churn: pd.DataFrame, mlflow_store: str
) -> None:
    """v1 validated on April; a challenger validated on May must beat v1 *on May*."""
    first_three = churn[churn["as_of"] <= churn["as_of"].unique()[2]]
    old = log_training(train(first_three, "churn"))
    assert old.promoted
    later = pd.concat(
        [
            churn,
            churn[churn["as_of"] == churn["as_of"].max()].assign(as_of=pd.Timestamp("2026-05-31", tz="UTC")),
        ]
    )
    challenger = train(later, "churn", features=WEAK)
    report = log_training(challenger)
    run = MlflowClient(tracking_uri=mlflow_store).get_run(report.run_id)
    assert challenger.validation_cutoffs == ["2026-05-31"]
    assert "champion_val_roc_auc" in run.data.metrics
    assert run.data.metrics["champion_val_roc_auc"] != pytest.approx(old.metrics["val_roc_auc"])
    assert not report.promoted


def test_promotion_can_be_switched_off_and_the_reason_says_so(churn: pd.DataFrame, mlflow_store: str) -> None:
    report = log_training(train(churn, "churn"), promote=False)
    assert not report.promoted
    assert report.reason.startswith("not promoted (promotion disabled")
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    assert client.get_registered_model("loyalty-churn").aliases == {}


def test_decide_promotion_rules() -> None:
    metrics = {"val_roc_auc": 0.80, "val_log_loss": 0.40}
    assert (
        decide_promotion(metrics, ChampionCheck()).reason == "promoted (no champion yet; val_roc_auc 0.8000)"
    )
    champ = ChampionCheck(version="4", metrics={"roc_auc": 0.79, "log_loss": 0.39})
    assert decide_promotion(metrics, champ).reason == (
        "promoted (val_roc_auc 0.8000 > champion v4 0.7900 on this holdout)"
    )
    by_loss = decide_promotion(metrics, champ, metric="val_log_loss")
    assert not by_loss.promote
    assert by_loss.reason == "not promoted (val_log_loss 0.4000 >= champion v4 0.3900 on this holdout)"
    by_loss_margin = decide_promotion({"val_log_loss": 0.385}, champ, metric="val_log_loss", min_delta=0.01)
    assert by_loss_margin.reason.endswith("0.3900 - 0.01 on this holdout)")
    margin = decide_promotion(metrics, champ, min_delta=0.02)
    assert not margin.promote
    assert "+ 0.02" in margin.reason
    broken = decide_promotion(metrics, ChampionCheck(version="4", problem="missing feature column 'x'"))
    assert broken.promote
    assert "champion v4 could not be scored on this holdout" in broken.reason
    with pytest.raises(InvalidInput, match="promotion metric"):
        decide_promotion(metrics, champ, metric="val_accuracy")


def test_offer_model_registers_under_its_own_name(offers: pd.DataFrame, mlflow_store: str) -> None:
    report = log_training(train(offers, "offers"))
    assert report.model_name == "loyalty-offer-propensity"
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    assert str(client.get_model_version_by_alias("loyalty-offer-propensity", "champion").version) == "1"
    assert "offers: 9" in load_card(report.run_id)


def test_model_card_states_the_trees_the_registered_booster_holds() -> None:
    """After a refit or averaged seeds the booster holds more trees than early stopping chose: the card must
    say what is registered, not the early-stopped count."""
    from models.registry.card import _trees_line

    assert _trees_line({"best_iteration": 120.0}) == (
        "Trees: 120 (early stopping on the calibration cutoff's log-loss)."
    )
    refit = _trees_line({"best_iteration": 386.0, "trees": 2322.0})
    assert refit.startswith("Trees: 2322 in the registered booster")
    assert "chose 386" in refit
