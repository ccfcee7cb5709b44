"""The churn job's cutoff plan: weekly, purged cutoffs for a short history; a horizon longer than complete
label windows allow trains on the longest that fits, and one too long for that is refused clearly."""

from __future__ import annotations

import dataclasses
import itertools

import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.jobs.churn_cutoffs import churn_cutoffs, cutoff_plan
from models.jobs.common import LedgerSpan
from models.jobs.params import load_job_params

PARAMS = load_job_params().churn
FIRST = pd.Timestamp("1997-01-01", tz="UTC")


def span(days: int) -> LedgerSpan:
    return LedgerSpan(first=FIRST + pd.Timedelta(hours=12), end=FIRST + pd.Timedelta(days=days))


def test_a_short_history_gets_weekly_purged_cutoffs() -> None:
    plan = cutoff_plan(span(320), PARAMS)
    assert plan.spacing_days == PARAMS.short_spacing_days == 7
    assert plan.n_cutoffs == PARAMS.short_n_cutoffs
    assert plan.label_days == PARAMS.horizon_days == plan.purge_days
    assert "short history (320 days < 365)" in plan.note
    as_of = span(320).end - pd.Timedelta(days=plan.label_days)
    grid = churn_cutoffs(
        as_of,
        span(320),
        n_cutoffs=plan.n_cutoffs,
        spacing_days=plan.spacing_days,
        min_history_days=PARAMS.min_history_days,
        purge_days=plan.purge_days,
    )
    assert grid[-1] == as_of
    # every training cutoff's label window ends by the validation cutoff; they are a week apart
    assert all(c + pd.Timedelta(days=plan.label_days) <= as_of for c in grid[:-1])
    assert {b - a for a, b in itertools.pairwise(grid[:-1])} == {pd.Timedelta(days=7)}


def test_a_long_history_keeps_the_monthly_grid() -> None:
    plan = cutoff_plan(span(800), PARAMS)
    assert (plan.spacing_days, plan.n_cutoffs, plan.purge_days) == (PARAMS.spacing_days, PARAMS.n_cutoffs, 0)
    assert plan.label_days == PARAMS.horizon_days
    assert plan.note == ""
    given = cutoff_plan(span(273), PARAMS, spacing_given=True, n_given=True)
    assert (given.spacing_days, given.n_cutoffs) == (PARAMS.spacing_days, PARAMS.n_cutoffs)


def test_a_horizon_longer_than_the_data_trains_on_the_longest_window_and_extrapolates() -> None:
    plan = cutoff_plan(span(273), dataclasses.replace(PARAMS, horizon_days=273))
    assert plan.horizon_days == 273
    assert PARAMS.min_label_days <= plan.label_days < 273
    # the whole weekly grid fits: history, the training cutoffs, two label windows
    room = 273 - PARAMS.min_history_days - 7 * (PARAMS.short_n_cutoffs - 2)
    assert plan.label_days == room // 2
    assert "BG/NBD's columns and candidates extrapolate to 273 days" in plan.note


def test_a_horizon_the_data_cannot_support_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidInput, match=r"fewer than min_label_days .* more history, a shorter horizon"):
        cutoff_plan(span(100), dataclasses.replace(PARAMS, horizon_days=90))
    with pytest.raises(InvalidInput, match=r"more than 4 times the longest complete label window"):
        cutoff_plan(span(273), dataclasses.replace(PARAMS, horizon_days=2000))
