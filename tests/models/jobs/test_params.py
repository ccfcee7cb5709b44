"""The jobs' parameters file: the figures the code used to hold, typed, with errors that name the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_core import InvalidInput
from models.jobs import DEFAULT_PARAMETERS, OfferRequest, load_job_params
from models.jobs.churn import resolve_churn
from models.jobs.offers import resolve_profile
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
    default = params.offers.profile("default")
    assert default.model == {
        "max_rounds": 60,
        "learning_rate": 0.15,
        "num_leaves": 31,
        "min_child_samples": 40,
    }
    assert (default.top_columns, default.max_send_cutoffs, default.uplift) == (25, 60, True)
    split = params.offers.profile("starbucks_split")
    assert split.model == {
        "boosting": "dart",
        "max_rounds": 400,
        "learning_rate": 0.05,
        "num_leaves": 63,
        "feature_fraction": 0.5,
        "refit": True,
        "seeds": 4,
        "calibration": "sigmoid",
    }
    assert (split.top_columns, split.exact_cutoffs, split.closed_end, split.grow_from_history) == (
        0,
        True,
        True,
        True,
    )
    assert not split.uplift
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


def test_the_split_selects_the_starbucks_profile_and_a_request_overrides_it() -> None:
    params = load_job_params()
    assert OfferRequest().profile_name == "default"
    assert OfferRequest(split_at="2024-01-01").profile_name == "starbucks_split"
    request = OfferRequest(split_at="2024-01-01", top_columns=5, model={"max_rounds": 60})
    resolved = resolve_profile(params.offers.profile(request.profile_name), request)
    assert resolved.top_columns == 5
    assert resolved.model["max_rounds"] == 60
    assert resolved.model["boosting"] == "dart"
    with pytest.raises(InvalidInput, match="unknown offer-job profile 'nope'"):
        params.offers.profile("nope")


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
