"""The training and scoring jobs end to end on a small simulated bank: simulate -> ingest -> train -> score.

One simulation (400 customers x 300 days) is ingested into a SQLite ledger once for the module, and the churn
and offer models are trained once into a module-wide MLflow store; the tests then check what those runs
logged, registered and promoted, how a worse run is refused, how ``--as-of`` is chosen and checked, the
batch score file, and the command line's exit codes.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine
from typer.testing import CliRunner

import mlflow
from loyalty_core import DEFAULT_RULES, InvalidInput, get_settings, load_rules, make_engine
from mlflow import MlflowClient
from models.estimators import TrainingResult
from models.jobs import (
    ChurnReport,
    ChurnRequest,
    OfferReport,
    OfferRequest,
    Registration,
    ScoreRequest,
    ScoringModels,
    latest_complete_as_of,
    ledger_span,
    load_job_params,
    read_catalogue,
    score_all,
    train_churn,
    train_offers,
)
from models.policy import MultiplierPolicy
from models.registry import CHALLENGER, UPLIFT_MODEL, load_champion, load_uplift, promote_uplift
from pipelines import SimConfig, churn_truth, ingest_history, simulate
from serving import cli_app as app
from tests.conftest import uplift_champion as ensure_uplift_champion

pytestmark = pytest.mark.slow

RULES = load_rules(DEFAULT_RULES)
CHURN_METRICS = {
    "val_roc_auc",
    "val_pr_auc",
    "val_log_loss",
    "val_brier",
    "val_lift_at_10pct",
    "baseline_val_roc_auc",
    "bgnbd_val_roc_auc",
    "bgnbd_palive_val_roc_auc",
}


@dataclass
class Bank:
    db: Path
    sim: Path
    engine: Engine
    store: str


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Iterator[Bank]:
    """The simulated bank in a ledger of its own, and an MLflow store for the module."""
    root = tmp_path_factory.mktemp("jobs")
    simulate(SimConfig(customers=400, days=300, seed=11, start=dt.date(2025, 1, 1)), root / "sim")
    db = root / "loyalty.db"
    shutil.copyfile(_sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    ingest_history(engine, root / "sim", rules=RULES)
    (root / "mlflow").mkdir()
    store = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store)
        mp.setenv("MLFLOW_REGISTRY_URI", store)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{db}")
        mp.setenv("LOYALTY_MULTIPLIER_FILE", str(root / "policy" / "multiplier.json"))  # not the repo's var/
        get_settings.cache_clear()
        yield Bank(db=db, sim=root / "sim", engine=engine, store=store)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    get_settings.cache_clear()
    engine.dispose()


@pytest.fixture(scope="module")
def churn(bank: Bank) -> ChurnReport:
    return train_churn(
        bank.engine,
        rules=RULES,
        request=ChurnRequest(truth_dir=bank.sim),
        registration=Registration(tracking_uri=bank.store),
    )


@pytest.fixture(scope="module")
def offers(bank: Bank) -> OfferReport:
    return train_offers(
        bank.engine,
        rules=RULES,
        request=OfferRequest(truth_dir=bank.sim / "truth"),
        registration=Registration(tracking_uri=bank.store),
    )


@pytest.fixture(scope="module")
def uplift_champion(bank: Bank, offers: OfferReport) -> str:
    """Batch scoring's uplift path needs an uplift champion."""
    return ensure_uplift_champion(offers.uplift, bank.store, "tests: the uplift path")


def test_churn_beats_its_baselines_and_logs_what_the_issue_names(bank: Bank, churn: ChurnReport) -> None:
    m = churn.metrics
    assert m["val_roc_auc"] > m["baseline_val_roc_auc"]
    assert m["val_roc_auc"] > m["bgnbd_val_roc_auc"]
    assert m["val_roc_auc"] > m["bgnbd_pnone_val_roc_auc"]
    # P(alive) alone ranks churners worse than BG/NBD's expected purchases (the model's known weakness)
    assert m["bgnbd_palive_val_roc_auc"] < m["bgnbd_val_roc_auc"]
    assert churn.run is not None
    run = MlflowClient(tracking_uri=bank.store).get_run(churn.run.run_id)
    assert set(run.data.metrics) >= CHURN_METRICS
    assert run.data.tags["promotion"].startswith("promoted (no champion yet")
    assert churn.run.promoted
    assert churn.run.champion_version == churn.run.version
    champion = load_champion("loyalty-churn", tracking_uri=bank.store)
    assert champion.version == churn.run.version
    # the gap to the simulator's truth, on exactly the holdout customers the truth scores
    truth = churn_truth(bank.sim, churn.as_of.to_pydatetime(), churn.horizon_days)
    assert m["val_roc_auc_truth"] > 0.5
    assert m["val_truth_rows"] == len(churn.result.validation)  # the simulator knows every customer
    _check_gap(m, churn.result, truth.rename(columns={"p_churn": "p"}), ["customer_id"])
    assert {"val_roc_auc_truth", "val_roc_auc_gap_to_truth"} <= set(run.data.metrics)
    assert any(line.startswith("vs the simulator's truth") for line in churn.lines())
    # the BG/NBD columns are inputs, and their parameters travel with the model
    assert {"bgnbd_p_alive", "bgnbd_expected_txns", "bgnbd_p_no_txn"} <= set(champion.feature_names)
    assert set(champion.scorer.meta["bgnbd"]) == {"r", "alpha", "a", "b", "horizon_days"}


def test_default_as_of_is_the_latest_complete_label_window(bank: Bank, churn: ChurnReport) -> None:
    span = ledger_span(bank.engine)
    assert churn.as_of == latest_complete_as_of(span, 90)
    assert churn.as_of + pd.Timedelta(days=90) <= span.end < churn.as_of + pd.Timedelta(days=91)
    assert churn.cutoffs[-1] == churn.as_of.date().isoformat()
    assert len(churn.cutoffs) >= 3


def test_an_as_of_whose_window_is_incomplete_is_refused(bank: Bank) -> None:
    too_late = (ledger_span(bank.engine).end - pd.Timedelta(days=30)).date().isoformat()
    with pytest.raises(InvalidInput, match=r"label window ends .* after the data .* latest complete cutoff"):
        train_churn(
            bank.engine,
            rules=RULES,
            request=ChurnRequest(as_of=too_late),
            registration=Registration(register=False),
        )
    with pytest.raises(InvalidInput, match="horizon"):
        train_churn(
            bank.engine,
            rules=RULES,
            request=ChurnRequest(horizon_days=0),
            registration=Registration(register=False),
        )


def test_a_worse_model_is_registered_but_not_promoted(bank: Bank, churn: ChurnReport) -> None:
    assert churn.run is not None
    worse = train_churn(
        bank.engine,
        rules=RULES,
        request=ChurnRequest(model={"max_rounds": 1, "num_leaves": 2, "learning_rate": 0.01}),
        registration=Registration(tracking_uri=bank.store),
    )
    assert worse.run is not None
    assert not worse.run.promoted
    assert worse.run.reason.startswith("not promoted (val_roc_auc")
    assert f"champion v{churn.run.version}" in worse.run.reason
    assert load_champion("loyalty-churn", tracking_uri=bank.store).version == churn.run.version
    tags = MlflowClient(tracking_uri=bank.store).get_run(worse.run.run_id).data.tags
    assert tags["promotion.decision"] == "rejected"


def test_offer_model_and_uplift_that_follows_the_truth(bank: Bank, offers: OfferReport) -> None:
    m = offers.metrics
    # one small campaign validates here (a few hundred sends): the model must rank better than chance; the
    # demo-size figures against the per-offer rate are in the README
    assert m["val_roc_auc"] > 0.55
    assert {"baseline_val_roc_auc", "ranking_val_roc_auc"} <= set(m)
    assert len(offers.columns) <= 40
    assert offers.run is not None
    assert offers.run.promoted
    assert offers.uplift is not None
    # the learner compares both arms on meeting the offer's condition: it no longer tracks the completion
    # uplift (0.6-0.7 when it compared completions with purchases), and its figure against the incremental
    # uplift it estimates is logged (a world this small holds little of that signal)
    assert abs(m["uplift_truth_spearman"]) < 0.3
    assert np.isfinite(m["uplift_truth_spearman_incremental"])
    assert np.isfinite(m["propensity_truth_spearman_incremental"])
    assert np.isfinite(m["uplift_qini"])
    # the propensity's gap to the truth, on the validation sends
    columns = ["customer_id", "offer_id", "p_complete_treated"]
    truth = pd.read_parquet(bank.sim / "truth" / "offer_effects.parquet", columns=columns)
    truth = truth.rename(columns={"p_complete_treated": "p"})
    assert offers.result is not None
    assert m["val_roc_auc_truth"] > 0.5
    assert m["val_truth_rows"] == len(offers.result.validation)
    _check_gap(m, offers.result, truth, ["customer_id", "offer_id"])
    assert any(line.startswith("vs the simulator's truth (") for line in offers.lines())
    # promoted only if it beats ranking by propensity and random targeting on its holdout; registered and
    # reachable as the challenger either way
    qini, by_propensity = m["uplift_qini"], m["uplift_qini_propensity"]
    assert offers.uplift.promoted == (qini > max(by_propensity, 0.0)), offers.uplift.reason
    client = MlflowClient(tracking_uri=bank.store)
    assert str(client.get_registered_model(UPLIFT_MODEL).aliases[CHALLENGER]) == offers.uplift.version
    uplift = load_uplift(alias=CHALLENGER, tracking_uri=bank.store)
    assert uplift.version == offers.uplift.version
    assert uplift.features == tuple(offers.columns)
    run = MlflowClient(tracking_uri=bank.store).get_run(offers.run.run_id)
    assert {
        "val_roc_auc",
        "baseline_val_roc_auc",
        "uplift_qini",
        "uplift_truth_spearman",
        "val_roc_auc_truth",
        "val_roc_auc_gap_to_truth",
    } <= set(run.data.metrics)
    uplift_run = MlflowClient(tracking_uri=bank.store).get_run(offers.uplift.run_id)
    assert uplift_run.data.params["target"].startswith("met")
    # the learner was chosen by cross-validated Qini on the training campaigns: the choice and the table
    chosen = uplift_run.data.params["uplift.chosen"]
    assert chosen == offers.uplift.chosen
    assert chosen in load_job_params().uplift.candidates
    for name in load_job_params().uplift.candidates:
        assert {f"cv_qini_{name}_mean", f"cv_qini_{name}_sd"} <= set(uplift_run.data.metrics)
    assert uplift_run.data.metrics["uplift_served_spearman"] > 0.9


def test_the_offer_model_is_chosen_on_an_inner_split_and_the_choice_is_logged(
    bank: Bank, offers: OfferReport
) -> None:
    choice = offers.choice
    assert choice is not None
    assert offers.run is not None
    assert choice.inner_cutoff is not None
    assert choice.inner_cutoff < offers.validation_cutoffs[0]  # carved from the training cutoffs
    run = MlflowClient(tracking_uri=bank.store).get_run(offers.run.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["job.offers.chosen"] == choice.chosen
    assert params["job.offers.choice.inner_cutoff"] == choice.inner_cutoff
    for score in choice.scores:
        assert score.name in params["job.offers.choice.reason"] or f"job.offers.choice.{score.name}" in params
        if score.roc_auc is not None:
            assert metrics[f"inner_val_roc_auc_{score.name}"] == pytest.approx(score.roc_auc)
    assert any(
        line.startswith(f"model {choice.chosen}, chosen on the inner split") for line in offers.lines()
    )


def test_a_person_can_override_the_uplift_gate_with_a_recorded_reason(
    bank: Bank, offers: OfferReport, uplift_champion: str
) -> None:
    client = MlflowClient(tracking_uri=bank.store)
    with pytest.raises(InvalidInput, match="needs a reason"):
        promote_uplift(uplift_champion, reason="  ", tracking_uri=bank.store)
    promote_uplift(uplift_champion, reason="campaign review 2026-11", tracking_uri=bank.store)
    assert load_uplift(tracking_uri=bank.store).version == uplift_champion
    tags = client.get_model_version(UPLIFT_MODEL, uplift_champion).tags
    assert tags["promotion.override"] == "campaign review 2026-11"
    assert offers.uplift is not None
    assert tags["promotion"] == offers.uplift.reason  # the job's own verdict stays beside the override
    # the same from the command line
    runner = CliRunner()
    done = runner.invoke(app, ["train", "promote-uplift", uplift_champion, "--reason", "reviewed by hand"])
    assert done.exit_code == 0, done.output
    assert f"{UPLIFT_MODEL} v{uplift_champion} is champion" in done.output
    tags = client.get_model_version(UPLIFT_MODEL, uplift_champion).tags
    assert tags["promotion.override"] == "reviewed by hand"
    missing = runner.invoke(app, ["train", "promote-uplift", "999", "--reason", "reviewed by hand"])
    assert missing.exit_code == 1
    assert "has no version '999'" in missing.output
    assert load_uplift(tracking_uri=bank.store).version == uplift_champion


def _check_gap(m: dict[str, float], result: TrainingResult, truth: pd.DataFrame, keys: list[str]) -> None:
    """The logged gap is truth minus model, both ROC AUCs recomputed here on the same validation rows."""
    rows = result.validation[keys].astype("str").reset_index(drop=True).merge(truth, on=keys, how="left")
    known = rows["p"].notna().to_numpy()
    y = result.y_val[known]
    truth_auc = roc_auc_score(y, rows["p"].to_numpy()[known])
    model_auc = roc_auc_score(y, result.proba_val[known])
    assert m["val_roc_auc_truth"] == pytest.approx(truth_auc)
    assert m["val_roc_auc_model_on_truth_rows"] == pytest.approx(model_auc)
    assert m["val_roc_auc_gap_to_truth"] == pytest.approx(truth_auc - model_auc)


def test_score_file_has_every_customer(
    bank: Bank, churn: ChurnReport, offers: OfferReport, tmp_path: Path
) -> None:
    as_of = ledger_span(bank.engine).end.date().isoformat()
    out = tmp_path / "scores.parquet"
    report = score_all(
        bank.engine,
        rules=RULES,
        request=ScoreRequest(
            as_of=as_of,
            out=out,
            reasons_top=25,
            multiplier_file=tmp_path / "policy" / "multiplier.json",
        ),
        tracking_uri=bank.store,
    )
    scores = pd.read_parquet(out)
    customers = pd.read_parquet(bank.sim / "customers.parquet")
    assert report.customers == len(scores)
    assert set(customers["customer_id"]) <= set(scores["customer_id"])
    assert scores["customer_id"].is_unique
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["bonus_multiplier"]) <= set(MultiplierPolicy().levels)
    for j in (1, 2, 3):
        given = scores[f"offer_{j}"].notna()
        assert scores.loc[given, f"offer_{j}_propensity"].between(0, 1).all()
        assert (scores.loc[given, f"offer_{j}_expected_value"] > 0).all()
    ranked = scores[scores["offer_2"].notna()]
    assert (ranked["offer_1_expected_value"] >= ranked["offer_2_expected_value"]).all()
    explained = scores[scores["churn_reasons"].notna()]
    assert len(explained) == 25
    assert explained["churn_probability"].min() >= scores["churn_probability"].nlargest(25).min()
    doc = json.loads((tmp_path / "policy" / "multiplier.json").read_text())
    assert doc["threshold"] >= MultiplierPolicy().point_value
    assert (
        json.loads(out.with_name(out.name + ".multiplier.json").read_text())["threshold"] == doc["threshold"]
    )
    assert report.versions["loyalty-churn"] == load_champion("loyalty-churn", tracking_uri=bank.store).version

    csv = tmp_path / "scores.csv"
    score_all(
        bank.engine,
        rules=RULES,
        request=ScoreRequest(
            as_of=as_of,
            out=csv,
            reasons_top=0,
            multiplier_file=tmp_path / "policy" / "multiplier.json",
        ),
        tracking_uri=bank.store,
    )
    assert len(pd.read_csv(csv)) == len(scores)


def test_compiled_trees_score_every_customer_as_lightgbm_does(
    bank: Bank, churn: ChurnReport, offers: OfferReport, uplift_champion: str, tmp_path: Path
) -> None:
    """The batch job's models run through lleaves (models.scorer.compiled); the file must not change by a
    bit."""
    as_of = ledger_span(bank.engine).end.date().isoformat()
    catalogue = read_catalogue(bank.engine)
    files = {}
    for compiled in (True, False):
        models = ScoringModels.build(
            load_champion("loyalty-churn", tracking_uri=bank.store).scorer,
            load_champion("loyalty-offer-propensity", tracking_uri=bank.store).scorer,
            catalogue,
            uplift=load_uplift(tracking_uri=bank.store),
            compile=compiled,
        )
        assert models.compiled is (compiled and sys.version_info < (3, 14))
        out = tmp_path / f"compiled-{compiled}.parquet"
        score_all(
            bank.engine,
            rules=RULES,
            request=ScoreRequest(
                as_of=as_of,
                out=out,
                reasons_top=0,
                chunk=300,  # several chunks, each above the compiled path's minimum
                multiplier_file=tmp_path / "policy" / "multiplier.json",
            ),
            models=models,
        )
        files[compiled] = pd.read_parquet(out)
    assert files[True]["offer_1_uplift"].notna().any()
    pd.testing.assert_frame_equal(files[True], files[False], check_exact=True)


def test_cli_exit_codes(bank: Bank, churn: ChurnReport, offers: OfferReport, tmp_path: Path) -> None:
    runner = CliRunner()
    end = ledger_span(bank.engine).end
    bad = runner.invoke(app, ["train", "churn", "--as-of", (end - pd.Timedelta(days=10)).date().isoformat()])
    assert bad.exit_code == 1
    assert "after the data" in bad.output
    assert runner.invoke(app, ["train", "churn", "--as-of", "yesterday"]).exit_code == 1
    for model in ("churn", "offers"):
        wrong = runner.invoke(app, ["train", model, "--truth", str(tmp_path / "nowhere")])
        assert wrong.exit_code == 1
        assert "--truth" in wrong.output
    assert (
        runner.invoke(app, ["score", "--as-of", "2025-10-01", "--out", str(tmp_path / "x.txt")]).exit_code
        == 1
    )
    ok = runner.invoke(
        app,
        ["score", "--as-of", end.date().isoformat(), "--out", str(tmp_path / "s.csv"), "--reasons-top", "5"],
    )
    assert ok.exit_code == 0, ok.output
    assert "scored" in ok.output
    assert (bank.db.parent / "policy" / "multiplier.json").exists()  # where LOYALTY_MULTIPLIER_FILE says
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0


def test_cli_without_champions_exits_1(bank: Bank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = f"sqlite:///{tmp_path / 'empty-mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", empty)
    result = CliRunner().invoke(app, ["score", "--as-of", "2025-10-01", "--out", str(tmp_path / "s.parquet")])
    assert result.exit_code == 1
    assert "no 'champion' version" in result.output
    mlflow.set_tracking_uri(bank.store)
    mlflow.set_registry_uri(bank.store)
