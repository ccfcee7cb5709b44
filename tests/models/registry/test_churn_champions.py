"""A BG/NBD churn champion (and a stacked one) is registered, loaded by ``load_champion`` and scored by the
same calls the service and batch scoring make on a LightGBM champion."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pytest

from models.estimators.churn_scorers import BgnbdScorer, StackedScorer, load_scorer
from models.jobs.churn_candidates import choose_candidate
from models.jobs.churn_steps import adopt_choice
from models.registry import load_champion, log_training
from tests.models.churn_cohort import HORIZON_DAYS, cohort, fitted


@pytest.mark.parametrize("winner", ["bgnbd_expected", "stack"])
def test_a_bgnbd_or_stacked_champion_registers_loads_and_scores(mlflow_store: str, winner: str) -> None:
    frame = cohort(n=600, seed=5, cutoffs=4)
    result, params = fitted(frame)
    choice = choose_candidate(result, frame, params, params[max(params)].params, horizon_days=HORIZON_DAYS)
    choice.chosen = winner  # whichever won, this test registers the kind it is about
    adopt_choice(result, choice, HORIZON_DAYS)

    report = log_training(result, tracking_uri=mlflow_store, tags={"champion.candidate": winner})
    assert report.promoted
    champion = load_champion("loyalty-churn", tracking_uri=mlflow_store)
    kind = BgnbdScorer if winner.startswith("bgnbd") else StackedScorer
    assert isinstance(champion.scorer, kind)
    assert champion.scorer.meta["candidate"] == winner
    assert champion.scorer.meta["bgnbd"]["horizon_days"] == HORIZON_DAYS  # what ChurnInputs reads

    x = champion.scorer.matrix(result.validation)
    p = champion.scorer.predict_proba(x)
    assert np.allclose(p, choice.served[winner].predict_proba(x))
    assert ((p >= 0) & (p <= 1)).all()
    assert champion.scorer.predict_one(x[0]) == pytest.approx(p[0])
    assert champion.scorer.compile() in (True, False)
    contributions = champion.scorer.contributions(x[:50])
    assert contributions.shape == (50, len(champion.scorer.features) + 1)
    assert np.allclose(contributions.sum(axis=1), champion.scorer.margin(x[:50]))  # reasons add up
    reasons = champion.scorer.explain(x[:50], k=2)
    assert any(r for r in reasons)
    assert {r.feature for rows in reasons for r in rows} <= set(champion.scorer.features)

    pyfunc = mlflow.pyfunc.load_model(f"models:/loyalty-churn/{champion.version}")
    assert np.allclose(pyfunc.predict(result.validation.head(20)), p[:20])


def test_a_saved_lightgbm_scorer_still_loads_as_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = cohort(n=400, seed=2, cutoffs=4)
    result, _ = fitted(frame)
    scorer = result.scorer()
    scorer.save(tmp_path)
    again = load_scorer(tmp_path)
    assert type(again).__name__ == "Scorer"
    x = scorer.matrix(result.validation)
    assert np.allclose(again.predict_proba(x), scorer.predict_proba(x))
