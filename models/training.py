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
(``models.offer_job``'s Starbucks split uses all four; every default leaves the above as it is):

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
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.baselines import OfferResponseRateBaseline, RecencyFrequencyBaseline
from models.calibration import Calibrator, fit_calibrator
from models.evaluation import classification_metrics, prefixed
from models.frames import (
    CUSTOMER_KEYS,
    CUTOFF,
    OFFER_KEYS,
    FrameSpec,
    check_binary,
    check_features,
    cutoffs,
    describe_cutoff,
    feature_matrix,
    fingerprint,
    split_out_of_time,
)
from models.scorer import Scorer

log = logging.getLogger(__name__)


# The scoring budget: batch scoring costs about one tree-row per 40 ns on 2 cores (benchmarks/scoring.py:
# 100 trees ~290k rows/s, 300 ~105k, 1000 ~39k), so at most 300 rounds of 31 leaves keeps `loyalty score`
# above 5 million customers a minute. A learning rate of 0.1 lets early stopping land well inside it.
MAX_ROUNDS = 300


def average_boosters(boosters: Sequence[lgb.Booster]) -> lgb.Booster:
    """One booster whose margin (and TreeSHAP contributions) is the mean of the given ones'.

    Their trees side by side in LightGBM's text format, every leaf and internal-node value divided by how
    many there are: a sum of trees is what LightGBM predicts, so the mean needs no scorer support, and the
    saved text loads anywhere a booster does. The boosters must share features and objective.
    """
    if len(boosters) == 1:
        return boosters[0]
    head = tail = ""
    blocks: list[str] = []
    for booster in boosters:
        text = booster.model_to_string()
        start, stop = text.index("Tree=0\n"), text.index("end of trees")
        if not head:
            head, tail = text[:start], text[stop:]
        blocks += [b for b in re.split(r"(?m)^(?=Tree=\d+$)", text[start:stop]) if b.strip()]
    share = len(boosters)

    def scaled(line: str) -> str:
        key, _, values = line.partition("=")
        if key in ("leaf_value", "internal_value"):
            return key + "=" + " ".join(repr(float(v) / share) for v in values.split())
        return line

    trees = []
    for i, block in enumerate(blocks):
        lines = block.strip("\n").split("\n")
        trees.append("\n".join([f"Tree={i}", *(scaled(line) for line in lines[1:])]) + "\n\n\n")
    # tree_sizes (byte offsets for parallel loading) no longer match: without it LightGBM reads in order.
    head = re.sub(r"(?m)^tree_sizes=.*\n", "", head)
    return lgb.Booster(model_str=head + "".join(trees) + tail)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(margin, dtype=np.float64)))


class BoostedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """LightGBM with out-of-time early stopping and calibration (see the module docstring).

    ``fit(X, y)`` takes the training frame itself: feature columns (``features``, or every numeric column
    except ``cutoff_column``, ``exclude`` and the label ``y`` itself) and the cutoff column that drives the
    inner split. ``categorical`` names integer-coded columns (codes >= 0, -1 = unknown) that LightGBM should
    split as categories rather than as ordered numbers. ``refit``, ``grow_from``, ``seeds`` and ``boosting``:
    see the module docstring.
    """

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        cutoff_column: str = CUTOFF,
        exclude: Sequence[str] = ("customer_id", "offer_id"),
        categorical: Sequence[str] = (),
        num_leaves: int = 31,
        learning_rate: float = 0.1,
        max_rounds: int = MAX_ROUNDS,
        early_stopping_rounds: int = 30,
        min_child_samples: int = 50,
        feature_fraction: float = 0.9,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        calibration: str = "auto",
        holdout_fraction: float = 0.2,
        refit: bool = False,
        grow_from: Any = None,
        seeds: int = 1,
        boosting: str = "gbdt",
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.cutoff_column = cutoff_column
        self.exclude = exclude
        self.categorical = categorical
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.calibration = calibration
        self.holdout_fraction = holdout_fraction
        self.refit = refit
        self.grow_from = grow_from
        self.seeds = seeds
        self.boosting = boosting
        self.n_jobs = n_jobs
        self.random_state = random_state

    # --- fitting ----------------------------------------------------------------------------------------
    def lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "boosting": self.boosting,
            "metric": ["binary_logloss", "auc"],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.lambda_l2,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def _features(self, X: pd.DataFrame, y: Any) -> list[str]:
        label = y.name if isinstance(y, pd.Series) and y.name in X.columns else None
        if self.features is not None:
            if label is not None and label in self.features:
                raise InvalidInput(f"the label {label!r} is listed as a feature", column=str(label))
            return list(self.features)
        # the frame usually still carries its label column: never learn from it
        exclude = (*self.exclude, *([str(label)] if label is not None else []))
        spec = FrameSpec(label="", keys=(), cutoff=self.cutoff_column, exclude=exclude)
        return spec.feature_columns(X)

    def _holdout_mask(self, X: pd.DataFrame) -> np.ndarray:
        if self.cutoff_column in X.columns and X[self.cutoff_column].nunique() >= 2:
            self.split_ = "out_of_time"
            last = cutoffs(X, self.cutoff_column)[-1]
            self.fit_cutoffs_ = [describe_cutoff(c) for c in cutoffs(X, self.cutoff_column)[:-1]]
            self.calibration_cutoff_: str | None = describe_cutoff(last)
            return np.asarray((X[self.cutoff_column] == last).to_numpy(), dtype=bool)
        self.split_ = "random"
        self.fit_cutoffs_ = (
            [describe_cutoff(c) for c in cutoffs(X, self.cutoff_column)] if self.cutoff_column in X else []
        )
        self.calibration_cutoff_ = None
        rng = np.random.default_rng(self.random_state)
        return rng.random(len(X)) < self.holdout_fraction

    def _grow_mask(self, X: pd.DataFrame) -> np.ndarray:
        """Rows the trees may grow on: all but those of cutoffs before ``grow_from`` (out-of-time only)."""
        grow = np.ones(len(X), dtype=bool)
        if self.grow_from is None or self.split_ != "out_of_time":
            return grow
        return np.asarray((X[self.cutoff_column] >= self.grow_from).to_numpy(), dtype=bool)

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: np.ndarray | None = None) -> Self:
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("BoostedClassifier.fit takes the training frame (a DataFrame)")
        target = check_binary(y)
        if len(target) != len(X):
            raise InvalidInput(f"{len(target)} labels for {len(X)} rows")
        features = self._features(X, y)
        if not features:
            raise InvalidInput("no numeric feature columns to train on", field="features")
        check_features(X, features)
        hold = self._holdout_mask(X)
        grow = self._grow_mask(X)
        fit = ~hold & grow
        if not hold.any() or not fit.any():
            raise InvalidInput("the inner split left no rows to fit or to calibrate on")
        if self.grow_from is not None and self.split_ == "out_of_time":
            self.fit_cutoffs_ = [describe_cutoff(c) for c in cutoffs(X[fit], self.cutoff_column)]
        matrix = feature_matrix(X, features)
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        for part, name in ((fit, "fit"), (hold, "calibration")):
            if len(np.unique(target[part])) < 2:
                raise InvalidInput(f"the {name} rows have only one label class; add more cutoffs or data")
        categorical = [c for c in self.categorical if c in features] or "auto"

        def dataset(rows: np.ndarray, **kw: Any) -> lgb.Dataset:
            w = None if weight is None else weight[rows]
            return lgb.Dataset(matrix[rows], target[rows], weight=w, **kw)

        # DART cannot stop early (module docstring): it grows ``max_rounds`` trees
        stopping: list[Callable[..., Any]] = (
            []
            if self.boosting == "dart"
            else [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        )
        stopped: list[lgb.Booster] = []
        final: list[lgb.Booster] = []
        bests: list[int] = []
        for k in range(max(1, self.seeds)):
            params = {**self.lgb_params(), "seed": self.random_state + k}
            train_set = dataset(
                fit, feature_name=features, categorical_feature=categorical, free_raw_data=True
            )
            booster = lgb.train(
                params,
                train_set,
                num_boost_round=self.max_rounds,
                valid_sets=[dataset(hold, reference=train_set)],
                valid_names=["holdout"],
                callbacks=stopping,
            )
            best = int(booster.best_iteration or booster.current_iteration())
            bests.append(best)
            # Keep exactly the chosen trees: the saved text, the scorer and this object agree by construction.
            stopped.append(lgb.Booster(model_str=booster.model_to_string(num_iteration=best)))
            if self.refit:
                rounds = max(1, round(best * int(grow.sum()) / int(fit.sum())))
                regrown = dataset(
                    grow, feature_name=features, categorical_feature=categorical, free_raw_data=True
                )
                final.append(lgb.train(params, regrown, num_boost_round=rounds))
        self.booster_ = average_boosters(stopped)
        self.best_iteration_ = round(sum(bests) / len(bests))
        self.features_ = features
        self.n_features_in_ = len(features)
        holdout_margin = np.asarray(
            self.booster_.predict(matrix[hold], raw_score=True, num_threads=self.n_jobs), dtype=np.float64
        )
        self.calibrator_: Calibrator = fit_calibrator(
            holdout_margin, target[hold], self.calibration, None if weight is None else weight[hold]
        )
        if self.refit:
            self.booster_ = average_boosters(final)
            fit = grow
            if self.split_ == "out_of_time":
                self.fit_cutoffs_ = [describe_cutoff(c) for c in cutoffs(X[fit], self.cutoff_column)]
        self.n_iter_ = int(self.booster_.num_trees())
        with warnings.catch_warnings():
            # A column never observed in the fit rows has no median; it is left out of the reference below.
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            medians = np.nanmedian(matrix[fit], axis=0)
        self.reference_ = {f: float(m) for f, m in zip(features, medians, strict=True) if np.isfinite(m)}
        self.fit_rows_ = int(fit.sum())
        self.calibration_rows_ = int(hold.sum())
        self.classes_ = np.array([0, 1])
        log.info(
            "fitted %d trees on %d rows (%s split), calibrated (%s) on %d rows",
            self.n_iter_,
            self.fit_rows_,
            self.split_,
            self.calibrator_.method,
            self.calibration_rows_,
        )
        return self

    # --- predicting -------------------------------------------------------------------------------------
    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "booster_")
        if isinstance(X, pd.DataFrame):
            return feature_matrix(X, self.features_)
        return np.asarray(X, dtype=np.float64)

    def predict_margin(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(
            self.booster_.predict(self._matrix(X), raw_score=True, num_threads=self.n_jobs), dtype=np.float64
        )

    def predict_raw_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's own, uncalibrated probability of the positive class (1-D)."""
        return sigmoid(self.predict_margin(X))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        proba = self.calibrator_.apply(self.predict_margin(X))
        return np.column_stack([1.0 - proba, proba])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int8)

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(
            self.booster_.predict(self._matrix(X), pred_contrib=True, num_threads=self.n_jobs),
            dtype=np.float64,
        )

    def importance(self) -> np.ndarray:
        check_is_fitted(self, "booster_")
        return np.asarray(self.booster_.feature_importance(importance_type="gain"), dtype=np.float64)

    def to_scorer(self, meta: Mapping[str, Any] | None = None, *, num_threads: int = 0) -> Scorer:
        check_is_fitted(self, "booster_")
        return Scorer(
            self.booster_,
            self.calibrator_,
            self.features_,
            reference=self.reference_,
            meta={
                "best_iteration": self.best_iteration_,
                "calibration": self.calibrator_.method,
                **(meta or {}),
            },
            num_threads=num_threads,
        )


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
            "two-model uplift estimate (models.uplift) to target incremental response.",
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
