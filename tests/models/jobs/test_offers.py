"""The Starbucks split's model: DART trees regrown on every training cutoff, none grown on the cutoff
without history, seeds averaged into one booster; on synthetic frames and on a slice of the real Starbucks
files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from loyalty_core import get_settings, load_rules
from models.estimators import BoostedClassifier, average_boosters
from models.inputs import split_out_of_time
from models.jobs import OfferRequest, Registration, first_cutoff_with_history, train_offers
from pipelines import EPOCH, LedgerFrames, import_starbucks
from tests.conftest import write_starbucks_slice

RULES = load_rules(get_settings().rules)
SLICE_PERSONS = 1000


def test_average_boosters_predicts_and_explains_the_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((600, 4))
    y = (x[:, 0] + 0.5 * rng.random(600) > 0.8).astype(int)
    params = {"objective": "binary", "verbose": -1, "bagging_fraction": 0.7, "bagging_freq": 1}
    boosters = [lgb.train({**params, "seed": s}, lgb.Dataset(x, y), 10 + 5 * s) for s in range(3)]
    merged = average_boosters(boosters)
    mean = np.mean([b.predict(x, raw_score=True) for b in boosters], axis=0)
    assert merged.num_trees() == sum(b.num_trees() for b in boosters)
    np.testing.assert_allclose(merged.predict(x, raw_score=True), mean, atol=1e-12)
    contributions = np.mean([b.predict(x, pred_contrib=True) for b in boosters], axis=0)
    np.testing.assert_allclose(merged.predict(x, pred_contrib=True), contributions, atol=1e-12)
    reloaded = lgb.Booster(model_str=merged.model_to_string())  # what the scorer saves and loads
    np.testing.assert_allclose(reloaded.predict(x, raw_score=True), mean, atol=1e-12)
    assert average_boosters(boosters[:1]) is boosters[0]


def test_boosted_classifier_regrows_on_every_cutoff_from_grow_from(churn: pd.DataFrame) -> None:
    train_part, _ = split_out_of_time(churn)
    first, second, _ = sorted(train_part["as_of"].unique())
    model = BoostedClassifier(
        max_rounds=300, early_stopping_rounds=20, refit=True, grow_from=second, seeds=2
    ).fit(train_part, train_part["churned"])
    # trees regrown on the second cutoff and the calibration one; the first one never grows trees
    assert model.fit_cutoffs_ == ["2026-02-28", "2026-03-31"]
    assert model.calibration_cutoff_ == "2026-03-31"
    assert model.fit_rows_ == int((train_part["as_of"] >= second).sum())
    assert model.n_iter_ == model.booster_.num_trees() > 2 * model.best_iteration_
    proba = model.predict_proba(train_part)[:, 1]
    assert ((proba > 0) & (proba < 1)).all()
    margin = model.predict_margin(train_part)
    np.testing.assert_allclose(model.contributions(train_part).sum(axis=1), margin, atol=1e-9)
    assert first < second

    plain = BoostedClassifier(max_rounds=300, early_stopping_rounds=20).fit(train_part, train_part["churned"])
    assert plain.fit_cutoffs_ == ["2026-01-31", "2026-02-28"]
    assert plain.booster_.num_trees() == plain.best_iteration_ == plain.n_iter_


def test_dart_grows_max_rounds_and_regrows_them_scaled(churn: pd.DataFrame) -> None:
    train_part, _ = split_out_of_time(churn)
    model = BoostedClassifier(boosting="dart", max_rounds=40, refit=True, seeds=2).fit(
        train_part, train_part["churned"]
    )
    assert model.best_iteration_ == 40  # no early stopping: the held-out cutoff only calibrates
    fit = int((train_part["as_of"] < train_part["as_of"].max()).sum())
    assert model.n_iter_ == 2 * round(40 * len(train_part) / fit)
    proba = model.predict_proba(train_part)[:, 1]
    assert ((proba > 0) & (proba < 1)).all()


def test_first_cutoff_with_history() -> None:
    t0 = pd.Timestamp("2018-07-27", tz="UTC")
    cutoffs = [t0 + pd.Timedelta(days=d) for d in (0, 7, 14, 17)]
    frames = LedgerFrames.from_frames(
        transactions=pd.DataFrame(
            {
                "id": [1],
                "customer_id": ["a"],
                "occurred_at": [t0],
                "type": ["purchase"],
                "amount": [1.0],
                "points": [0],
            }
        )
    )
    assert first_cutoff_with_history(frames, cutoffs) == cutoffs[1]
    assert first_cutoff_with_history(frames, cutoffs[1:]) is None  # every cutoff has history
    assert first_cutoff_with_history(frames, cutoffs[:2]) is None  # one left: nothing to stop early on
    assert first_cutoff_with_history(LedgerFrames.from_frames(), cutoffs) is None


@pytest.fixture(scope="module")
def starbucks_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1,000 profiles, every transcript row of theirs, and the whole portfolio."""
    return write_starbucks_slice(tmp_path_factory.mktemp("starbucks-offers"), SLICE_PERSONS)


def test_starbucks_split_regrows_without_the_first_send_hour(engine: Engine, starbucks_slice: Path) -> None:
    import_starbucks(engine, starbucks_slice, rules=RULES)
    report = train_offers(
        engine,
        rules=RULES,
        request=OfferRequest(
            split_at=EPOCH + dt.timedelta(hours=504),
            uplift=False,
            model={"max_rounds": 60},  # the split's DART trees, fewer of them: this is a slice of the data
        ),
        registration=Registration(register=False),
    )
    result = report.result
    assert result is not None
    model = result.model
    assert (model.refit, model.seeds, model.calibrator_.method) == (True, 4, "sigmoid")
    assert (model.boosting, model.max_rounds, model.best_iteration_) == ("dart", 60, 60)
    assert model.grow_from == pd.Timestamp(EPOCH + dt.timedelta(hours=168))
    # hour 0 has no history: no trees grow on it, but the per-offer baseline still learns from its sends
    assert result.train_cutoffs == ["2018-07-27", "2018-08-03", "2018-08-10", "2018-08-13"]
    assert result.data["fit_cutoffs"] == ["2018-08-03", "2018-08-10", "2018-08-13"]
    assert result.data["calibration_cutoff"] == "2018-08-13"
    assert report.validation_cutoffs == ["2018-08-17", "2018-08-20"]
    m = report.metrics
    assert m["trees"] == model.booster_.num_trees() > m["best_iteration"]
    assert m["val_roc_auc"] > m["baseline_val_roc_auc"] + 0.1
    assert m["val_roc_auc"] == pytest.approx(m["raw_val_roc_auc"])  # Platt keeps the ranking
