"""The offer job's one protocol: the model chosen on an inner split of the training cutoffs (and logged),
trees regrown on every training cutoff, none grown on the cutoff without history, seeds averaged into one
booster; on synthetic frames and on a slice of the real Starbucks files."""

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
from models.jobs import (
    OfferCandidate,
    OfferRequest,
    Registration,
    choose_candidate,
    first_cutoff_with_history,
    load_job_params,
    train_offers,
)
from pipelines import EPOCH, LedgerFrames, import_starbucks
from tests.conftest import write_starbucks_slice
from tests.models.conftest import offer_frame

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


RANKING = {"max_rounds": 30, "learning_rate": 0.2, "num_leaves": 7}
# A single split against real trees: on offer_frame's interactions the second ranks far better.
STUMP = OfferCandidate(top_columns=0, model={"max_rounds": 1, "num_leaves": 2, "min_child_samples": 20})
TREES = OfferCandidate(top_columns=0, model={"max_rounds": 80, "learning_rate": 0.1, "num_leaves": 15})


@pytest.fixture(scope="module")
def four_cutoffs() -> pd.DataFrame:
    return offer_frame(n_customers=600, n_cutoffs=4)


def test_choose_candidate_takes_the_better_model_on_the_inner_split(four_cutoffs: pd.DataFrame) -> None:
    choice = choose_candidate(
        four_cutoffs,
        RANKING,
        {"stump": STUMP, "trees": TREES},
        grow_from=None,
        min_gain=0.002,
        budget_seconds=60,
    )
    last = sorted(four_cutoffs["as_of"].unique())[-1]
    assert choice.inner_cutoff == last.date().isoformat()  # the last training cutoff, held out
    stump, trees = choice.scores
    assert (stump.name, trees.name) == ("stump", "trees")
    assert stump.roc_auc is not None
    assert trees.roc_auc is not None
    assert trees.roc_auc > stump.roc_auc + 0.05
    assert choice.chosen == "trees"
    assert choice.reason.startswith("trees: inner ROC AUC")
    # what the run logs: the choice as parameters, each candidate's inner score as a metric
    assert choice.metrics() == {
        "inner_val_roc_auc_stump": stump.roc_auc,
        "inner_val_roc_auc_trees": trees.roc_auc,
    }
    logged = choice.parameters()
    assert logged["offers.chosen"] == "trees"
    assert logged["offers.choice.inner_cutoff"] == choice.inner_cutoff
    assert logged["offers.choice.stump"].startswith(f"{stump.roc_auc:.4f} in ")


def test_an_inner_split_that_cannot_score_keeps_the_first_candidate(
    four_cutoffs: pd.DataFrame,
) -> None:
    """One label class at the inner cutoff: the inner split can judge no candidate, so the first (cheapest)
    is kept and the reason says why, instead of the whole training run failing on its inner split."""
    last = sorted(four_cutoffs["as_of"].unique())[-1]
    one_class = four_cutoffs.assign(
        completed=four_cutoffs["completed"].where(four_cutoffs["as_of"] != last, 0).astype(np.int8)
    )
    choice = choose_candidate(
        one_class,
        RANKING,
        {"stump": STUMP, "trees": TREES},
        grow_from=None,
        min_gain=0.002,
        budget_seconds=60,
    )
    assert [s.roc_auc for s in choice.scores] == [None, None]
    assert choice.chosen == "stump"
    assert choice.reason.startswith("the inner split cannot score candidates (the holdout has only one label")


def test_a_costlier_candidate_is_chosen_only_if_it_pays(four_cutoffs: pd.DataFrame) -> None:
    choice = choose_candidate(
        four_cutoffs,
        RANKING,
        {"stump": STUMP, "trees": TREES},
        grow_from=None,
        min_gain=0.5,
        budget_seconds=60,
    )
    assert choice.chosen == "stump"  # the first (cheapest) one: the other's gain is under min_gain
    assert "does not add 0.5" in choice.reason


def test_candidates_past_the_time_budget_are_skipped_and_too_few_cutoffs_leave_the_first(
    four_cutoffs: pd.DataFrame,
) -> None:
    ticks = iter(range(0, 10_000, 100))  # every look at the clock: 100 s later
    choice = choose_candidate(
        four_cutoffs,
        RANKING,
        {"stump": STUMP, "trees": TREES},
        grow_from=None,
        min_gain=0.0,
        budget_seconds=150,
        clock=lambda: float(next(ticks)),
    )
    assert choice.chosen == "stump"
    assert choice.scores[1].roc_auc is None
    assert choice.scores[1].note == "skipped: over the 150 s budget"
    assert choice.parameters()["offers.choice.trees"] == "skipped: over the 150 s budget"
    two = four_cutoffs[four_cutoffs["as_of"] < sorted(four_cutoffs["as_of"].unique())[2]]
    fallback = choose_candidate(
        two, RANKING, {"trees": TREES, "stump": STUMP}, grow_from=None, min_gain=0.0, budget_seconds=60
    )
    assert (fallback.chosen, fallback.inner_cutoff, fallback.metrics()) == ("trees", None, {})
    alone = choose_candidate(
        four_cutoffs, RANKING, {"trees": TREES}, grow_from=None, min_gain=0.0, budget_seconds=60
    )
    assert (alone.chosen, alone.inner_cutoff, alone.reason) == ("trees", None, "the only candidate")


def test_the_job_has_one_offer_protocol_for_every_data_set() -> None:
    """No profile keyed on a data set or on the split option: one ``[offers]`` table, whose candidates
    the inner split chooses between."""
    offers = load_job_params().offers
    assert not hasattr(offers, "profiles")
    assert not hasattr(OfferRequest(), "profile")
    assert all("starbucks" not in name for name in offers.candidates)
    assert (offers.closed_end, offers.grow_from_history) == (True, True)
    first = next(iter(offers.candidates.values()))
    assert first.top_columns > 0  # the fallback is the cheap model batch scoring can afford


def test_starbucks_split_chooses_on_the_inner_split_and_regrows_without_the_first_send_hour(
    engine: Engine, starbucks_slice: Path
) -> None:
    import_starbucks(engine, starbucks_slice, rules=RULES)
    report = train_offers(
        engine,
        rules=RULES,
        request=OfferRequest(
            split_at=EPOCH + dt.timedelta(hours=504),
            uplift=False,
            model={"max_rounds": 60},  # fewer trees per candidate: this is a slice of the data
        ),
        registration=Registration(register=False),
    )
    result, choice = report.result, report.choice
    assert result is not None
    assert choice is not None
    # the inner split: hour 408 held out, never the validation hours (504 and 576)
    assert choice.inner_cutoff == "2018-08-13"
    assert [s.name for s in choice.scores] == ["compact", "regrown"]
    assert set(choice.metrics()) == {"inner_val_roc_auc_compact", "inner_val_roc_auc_regrown"}
    model = result.model
    assert model.grow_from == pd.Timestamp(EPOCH + dt.timedelta(hours=168))
    # hour 0 has no history: no trees grow on it, but the per-offer baseline still learns from its sends
    assert result.train_cutoffs == ["2018-07-27", "2018-08-03", "2018-08-10", "2018-08-13"]
    assert result.data["fit_cutoffs"][0] == "2018-08-03"
    assert result.data["calibration_cutoff"] == "2018-08-13"
    assert report.validation_cutoffs == ["2018-08-17", "2018-08-20"]
    m = report.metrics
    assert m["val_roc_auc"] > m["baseline_val_roc_auc"] + 0.1
    scores = choice.metrics()
    # the accurate candidate only where it pays on the inner split (min_gain 0.002 in parameters.toml)
    assert (choice.chosen == "regrown") == (
        scores["inner_val_roc_auc_regrown"] >= scores["inner_val_roc_auc_compact"] + 0.002
    )
    if choice.chosen == "regrown":
        assert (model.refit, model.calibrator_.method) == (True, "sigmoid")
        assert m["trees"] == model.booster_.num_trees() > m["best_iteration"]
        assert m["val_roc_auc"] == pytest.approx(m["raw_val_roc_auc"])  # Platt keeps the ranking
