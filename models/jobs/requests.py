"""What a caller asks of one job run (the CLI's options, a test's or a notebook's choices), apart from the
job's parameters (``models.jobs.params``) and from where the run is recorded (``Registration``).

``None`` in a request means "the parameters file's value"; a run logs what it resolved either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.policy import FrequencyCaps


@dataclass(frozen=True, slots=True)
class Registration:
    """Where a run is recorded: the MLflow store (None: ``MLFLOW_TRACKING_URI`` or the repository's), whether
    the model is logged and registered at all, and whether it may become champion."""

    tracking_uri: str | None = None
    register: bool = True
    promote: bool = True


@dataclass(frozen=True, slots=True)
class ChurnRequest:
    """``loyalty train churn``: the last cutoff (default: chosen, see ``churn_cutoffs.choose_as_of``) or the
    whole grid, overrides of ``[churn]`` and of its model's hyper-parameters, and a simulator's truth."""

    as_of: Any = None
    cutoffs: Sequence[Any] = ()
    horizon_days: int | None = None
    n_cutoffs: int | None = None
    spacing_days: int | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    truth_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class OfferRequest:
    """``loyalty train offers``: the last cutoff or the grid, the split instant that names the validation
    period, overrides of ``[offers]`` (for every candidate: its column count and hyper-parameters), whether
    to train the uplift model, and a simulator's truth.

    ``candidate``: fit that ``[offers.candidates]`` table without the inner-split choice (a benchmark of one
    model, a test); by default the job chooses."""

    as_of: Any = None
    cutoffs: Sequence[Any] = ()
    split_at: Any = None
    candidate: str | None = None
    top_columns: int | None = None
    closed_end: bool | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    uplift: bool | None = None
    truth_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """``loyalty score``: the as-of date and output file (Parquet, or CSV for ``.csv``), how many offers per
    customer, which customers get reason codes, the multipliers' budget and file, the contact caps, and
    whether uplift ranks the offers. ``None``: the ``[scoring]`` parameters' value; ``multiplier_file``
    None: ``models.jobs.scoring.MULTIPLIER_FILE``."""

    as_of: Any
    out: Path
    k: int | None = None
    reasons_top: int | None = None
    reasons_all: bool = False
    multiplier_budget: float | None = None
    margin_rate: float | None = None
    caps: FrequencyCaps = field(default_factory=FrequencyCaps)
    multiplier_file: Path | None = None
    uplift: bool = True
    chunk: int | None = None
