"""Training the churn and offer-propensity models: LightGBM, early stopping and calibration, all out of time.

Two nested out-of-time splits, both on the cutoff column ``as_of``:

1. ``train`` holds the latest cutoff out as the run's validation set. Nothing fitted in the run sees it;
   every reported metric (model, baseline, and the champion it must beat) comes from it.
2. ``BoostedClassifier.fit`` holds the latest of the remaining (training) cutoffs out again: trees are grown
   on the earlier cutoffs, early stopping watches the held-out cutoff's log-loss, and the calibrator is
   fitted on the held-out cutoff's margins.

Why calibrate on the last training cutoff rather than ``CalibratedClassifierCV(FrozenEstimator(...))`` with
random folds: the probabilities must be right for the *next* period, and what changes between periods (the
base rate drifts with season and campaigns) is exactly what an out-of-time calibration set captures and a
random in-time fold averages away. It also keeps the calibrator a handful of numbers the scorer applies
with ``np.interp``. Early stopping and calibration share that cutoff: early stopping only picks one number
(the tree count) from it, so the calibrator's view of it stays essentially unbiased, and splitting it
further would starve the isotonic fit. The trees are not refitted on all training cutoffs afterwards: the
calibrator describes the margins of *these* trees on unseen data, and a refit would invalidate it.

Four opt-in departures, for benchmarks where the ranking matters more than the last bit of calibration
(``models.jobs.offers``'s Starbucks split uses all four; every default leaves the above as it is):

- ``refit``: once early stopping has chosen the tree count and the calibrator is fitted, the trees are grown
  again on every training row, the held-out cutoff included, for the chosen count scaled by how many more
  rows they now learn from. With few cutoffs the held-out one is a large share of the training data and
  the nearest in time to what is scored; leaving it out of the trees costs more ranking than the
  approximation below costs calibration. The calibrator stays the one fitted on the held-out margins of
  the early-stopped trees: the refitted trees have seen those rows, so no unbiased set is left to refit it
  on, and applying it assumes the refitted trees' margins on new rows spread as the early-stopped trees'
  did on the held-out ones (same learning rate, rounds scaled with the rows).
- ``grow_from``: rows of cutoffs before it never grow trees (the baseline and the caller still see them).
  For cutoffs whose features have no history window behind them, where a zero count means "not observed
  yet" rather than "did not buy", which is what it means at every later cutoff and at scoring time.
- ``seeds``: the whole fit is repeated with that many seeds (bagging and column sampling differ) and the
  margins averaged, which lowers the variance of the ranking; ``average_boosters`` makes the average one
  booster, so scoring, the saved model and reason codes are unchanged. Calibration then describes the
  average of the early-stopped boosters; ``best_iteration_`` is their mean tree count.
- ``boosting="dart"``: each round drops a random share of the trees already grown before fitting the next
  one, so late trees keep correcting rather than only refining the first ones. DART rescales trees it has
  already grown, so the held-out log-loss is not monotone in the rounds and LightGBM cannot stop early:
  ``max_rounds`` is the tree count, and the held-out cutoff only calibrates (and ``refit`` scales it).

With a single training cutoff the inner split falls back to a random 20 % of rows (recorded as
``split_ = "random"`` and in the model card's caveats).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.baselines import OfferResponseRateBaseline, RecencyFrequencyBaseline
from models.estimators.boosted import BoostedClassifier
from models.evaluation import classification_metrics, prefixed
from models.inputs import (
    CUSTOMER_KEYS,
    OFFER_KEYS,
    FrameSpec,
    check_binary,
    cutoffs,
    describe_cutoff,
    fingerprint,
    split_out_of_time,
)
from models.scorer.scorer import Scorer

log = logging.getLogger(__name__)


# --- tasks ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Task:
    """What differs between the churn and the offer model: names, keys, label, baseline, card text."""

    name: str
    registered_model: str
    label: str
    keys: tuple[str, ...]
    baseline_name: str
    make_baseline: Callable[..., Any]
    intended_use: str
    caveats: tuple[str, ...] = ()
    # numeric columns of the pipelines' frame that are outcomes, not features (they happen after the cutoff)
    exclude: tuple[str, ...] = ()


TASKS: dict[str, Task] = {
    "churn": Task(
        name="churn",
        registered_model="loyalty-churn",
        label="churned",
        keys=CUSTOMER_KEYS,
        baseline_name="recency x frequency rule",
        make_baseline=RecencyFrequencyBaseline,
        intended_use=(
            "Ranks members by the probability that they stop transacting in the label window after the "
            "cutoff, to size retention budgets and to set the bonus multiplier of at-risk, valuable members. "
            "Scores are calibrated probabilities, so they can be multiplied by customer value."
        ),
        caveats=(
            "A churn score says who is likely to leave, not who can be kept: use uplift estimates to decide "
            "whom an incentive changes.",
            "Trained on past cutoffs; a change of the programme's rules or of the feature pipeline needs a "
            "retrain before the scores are trusted.",
        ),
    ),
    "offers": Task(
        name="offers",
        registered_model="loyalty-offer-propensity",
        label="completed",
        keys=OFFER_KEYS,
        exclude=("viewed",),
        baseline_name="historical response rate per offer",
        make_baseline=OfferResponseRateBaseline,
        intended_use=(
            "Probability that a member completes an offer within its validity if it is sent, for any offer "
            "of the catalogue: one model over customer features x offer attributes (columns `offer_*`), so "
            "a new offer is scored from its attributes without retraining. Feeds the expected-value ranking "
            "(P(response) x value - cost)."
        ),
        caveats=(
            "Propensity is not uplift: customers who would have completed anyway score high. Use the "
            "two-model uplift estimate (models.estimators.TwoModelUplift) to target incremental response.",
            "An offer whose attributes lie outside those seen in training (a new kind, a far larger bonus) "
            "is extrapolated; watch its first campaign.",
        ),
    ),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise InvalidInput(f"unknown model {name!r}; one of {', '.join(TASKS)}", field="task") from None


@dataclass
class TrainingResult:
    """Everything a run logs: the fitted model and baseline, the holdout and the metrics on it."""

    task: Task
    spec: FrameSpec
    model: BoostedClassifier
    baseline: Any
    features: list[str]
    train_cutoffs: list[str]
    validation_cutoffs: list[str]
    validation: pd.DataFrame
    y_val: np.ndarray
    proba_val: np.ndarray
    raw_proba_val: np.ndarray
    baseline_proba_val: np.ndarray
    metrics: dict[str, float]
    data: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def scorer(self, *, num_threads: int = 0) -> Scorer:
        return self.model.to_scorer(
            {"task": self.task.name, "label": self.spec.label}, num_threads=num_threads
        )


def train(
    frame: pd.DataFrame,
    task: str | Task,
    *,
    label: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    baseline_params: Mapping[str, Any] | None = None,
    sample_weight: str | None = None,
    n_validation: int = 1,
) -> TrainingResult:
    """Fit the model and its baseline on the earlier cutoffs, evaluate both on the latest one.

    ``params`` are ``BoostedClassifier`` hyper-parameters; ``baseline_params`` go to the task's baseline
    (e.g. ``{"recency": "days_since_last_txn"}``); ``sample_weight`` names a weight column, if any.
    """
    the_task = get_task(task) if isinstance(task, str) else task
    if features is not None:
        leaked = [f for f in features if f in the_task.exclude]
        if leaked:
            raise InvalidInput(f"{leaked[0]!r} is an outcome of the {the_task.name} task, not a feature")
    reserved = (*the_task.exclude, *exclude, *((sample_weight,) if sample_weight else ()))
    spec = FrameSpec(
        label=label or the_task.label,
        keys=the_task.keys,
        features=tuple(features) if features is not None else None,
        exclude=reserved,
    )
    feature_names = spec.validate(frame)
    train_part, val_part = split_out_of_time(frame, spec.cutoff, n_validation=n_validation)
    y_train = check_binary(train_part[spec.label], spec.label)
    y_val = check_binary(val_part[spec.label], spec.label)
    model_params = {"n_jobs": 2, **(params or {}), "features": feature_names, "cutoff_column": spec.cutoff}
    model = BoostedClassifier(**model_params)
    weights = train_part[sample_weight].to_numpy(np.float64) if sample_weight else None
    model.fit(train_part, y_train, sample_weight=weights)
    baseline = the_task.make_baseline(**(baseline_params or {}))
    baseline.fit(train_part, y_train)

    proba = model.predict_proba(val_part)[:, 1]
    raw = model.predict_raw_proba(val_part)
    base = baseline.predict_proba(val_part)[:, 1]
    metrics = {
        **prefixed(classification_metrics(y_val, proba), "val_"),
        **prefixed(classification_metrics(y_val, raw), "raw_val_"),
        **prefixed(classification_metrics(y_val, base), "baseline_val_"),
        "best_iteration": float(model.best_iteration_),
        # trees in the model when it is not the early-stopped count (grown again, or several seeds)
        **({"trees": float(model.n_iter_)} if model.n_iter_ != model.best_iteration_ else {}),
    }
    columns = [*spec.keys, *feature_names, spec.label]
    train_cutoffs = [describe_cutoff(c) for c in cutoffs(train_part, spec.cutoff)]
    data = {
        "rows": len(frame),
        "train_rows": len(train_part),
        "validation_rows": len(val_part),
        "customers": int(frame["customer_id"].nunique()) if "customer_id" in frame else None,
        "train_positive_rate": float(y_train.mean()),
        "validation_positive_rate": float(y_val.mean()),
        "sha256": fingerprint(frame, [c for c in dict.fromkeys(columns) if c in frame.columns]),
        "inner_split": model.split_,
        "fit_cutoffs": model.fit_cutoffs_,
        "calibration_cutoff": model.calibration_cutoff_,
        "calibration_method": model.calibrator_.method,
        "fit_rows": model.fit_rows_,
        "calibration_rows": model.calibration_rows_,
    }
    if "offer_id" in frame.columns:
        data["offers"] = int(frame["offer_id"].nunique())
    return TrainingResult(
        task=the_task,
        spec=spec,
        model=model,
        baseline=baseline,
        features=feature_names,
        train_cutoffs=train_cutoffs,
        validation_cutoffs=[describe_cutoff(c) for c in cutoffs(val_part, spec.cutoff)],
        validation=val_part,
        y_val=y_val,
        proba_val=proba,
        raw_proba_val=raw,
        baseline_proba_val=base,
        metrics=metrics,
        data=data,
        params={k: v for k, v in model.get_params().items() if k != "features"},
    )
