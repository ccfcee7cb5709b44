"""The jobs' parameters file: the figures the code used to hold, typed, with errors that name the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_core import InvalidInput
from models.jobs import DEFAULT_PARAMETERS, OfferRequest, load_job_params
from models.jobs.churn import resolve_churn
from models.jobs.offers import resolve_protocol
from models.jobs.params import flatten
from models.jobs.requests import ChurnRequest


def test_the_default_file_holds_the_figures_the_jobs_ran_with() -> None:
    params = load_job_params()
    assert params.source == DEFAULT_PARAMETERS
    churn = params.churn
    assert (churn.horizon_days, churn.n_cutoffs, churn.spacing_days, churn.min_history_days) == (
        90,
        6,
        30,
        60,
    )
    assert (churn.min_class_rows, churn.quiet_share) == (10, 0.1)
    assert churn.model == {
        "max_rounds": 150,
        "learning_rate": 0.1,
        "categorical": ("gender", "region", "preferred_channel"),
    }
    offers = params.offers
    assert (offers.max_send_cutoffs, offers.exact_cutoffs, offers.closed_end, offers.grow_from_history) == (
        60,
        False,
        True,
        True,
    )
    assert (offers.uplift, offers.min_gain, offers.choice_seconds) == (True, 0.002, 900)
    assert list(offers.candidates) == ["compact", "regrown"]  # cheapest to score first
    compact = offers.candidate("compact")
    assert compact.model == {
        "max_rounds": 60,
        "learning_rate": 0.15,
        "num_leaves": 31,
        "min_child_samples": 40,
    }
    assert compact.top_columns == 25
    regrown = offers.candidate("regrown")
    assert regrown.model == {
        "max_rounds": 200,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "feature_fraction": 0.5,
        "refit": True,
        "calibration": "sigmoid",
    }
    assert regrown.top_columns == 40
    assert params.offers.ranking == {"max_rounds": 200, "learning_rate": 0.1, "num_leaves": 31}
    assert params.uplift.candidates == ("s_learner", "t_learner", "response")
    assert params.uplift.folds == 3
    assert params.uplift.model == {
        "n_estimators": 20,
        "learning_rate": 0.2,
        "num_leaves": 15,
        "min_child_samples": 40,
    }
    assert (params.scoring.top_k, params.scoring.reasons_top, params.scoring.chunk) == (3, 1000, 20_000)
    assert params.scoring.margin_rate == 0.01


def test_a_request_overrides_every_candidate_or_names_one() -> None:
    params = load_job_params()
    request = OfferRequest(split_at="2024-01-01", top_columns=5, model={"max_rounds": 60})
    resolved = resolve_protocol(params.offers, request)
    assert list(resolved.candidates) == ["compact", "regrown"]  # the split option changes no parameter
    assert {c.top_columns for c in resolved.candidates.values()} == {5}
    assert {c.model["max_rounds"] for c in resolved.candidates.values()} == {60}
    assert resolved.candidates["regrown"].model["refit"] is True
    one = resolve_protocol(params.offers, OfferRequest(candidate="regrown", closed_end=False))
    assert (list(one.candidates), one.closed_end) == (["regrown"], False)
    with pytest.raises(InvalidInput, match="unknown offer-model candidate 'nope'"):
        resolve_protocol(params.offers, OfferRequest(candidate="nope"))


def test_a_churn_request_overrides_the_file_and_the_run_logs_what_it_resolved() -> None:
    params = resolve_churn(load_job_params().churn, ChurnRequest(horizon_days=60, model={"num_leaves": 7}))
    assert params.horizon_days == 60
    logged = flatten({"horizon_days": params.horizon_days, "model": dict(params.model)}, "churn")
    assert logged["churn.horizon_days"] == 60
    assert logged["churn.model.num_leaves"] == 7
    assert logged["churn.model.max_rounds"] == 150


def test_a_wrong_file_is_refused_with_the_place_of_the_mistake(tmp_path: Path) -> None:
    text = DEFAULT_PARAMETERS.read_text(encoding="utf-8")
    typo = tmp_path / "typo.toml"
    typo.write_text(text.replace("horizon_days = 90", "horizon_day = 90"), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"\[churn\]: unknown horizon_day; missing horizon_days"):
        load_job_params(typo)
    with pytest.raises(InvalidInput, match="no job parameters file"):
        load_job_params(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[churn\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_job_params(broken)


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("folds = 3", "folds = 1", r"\[uplift\] folds must be an integer of at least 2"),
        ("folds = 3\n", "", r"\[uplift\]: missing folds"),
        ('candidates = ["s_learner", "t_learner", "response"]', "candidates = []", "list of learner names"),
        (
            'candidates = ["s_learner", "t_learner", "response"]',
            'candidates = "s_learner"',
            "list of learner",
        ),
    ],
)
def test_the_uplift_selection_parameters_are_checked(tmp_path: Path, old: str, new: str, says: str) -> None:
    text = DEFAULT_PARAMETERS.read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(InvalidInput, match=says):
        load_job_params(bad)
