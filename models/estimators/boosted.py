"""The LightGBM classifier of the churn and offer models (``BoostedClassifier``), trained out of time with
early stopping and calibration; the protocol and its opt-in departures are described in
``models.estimators.training``. Follows scikit-learn's estimator rules so it drops into its tools.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.inputs import (
    CUTOFF,
    FrameSpec,
    check_binary,
    check_features,
    cutoffs,
    describe_cutoff,
    feature_matrix,
)
from models.scorer.calibration import Calibrator, fit_calibrator
from models.scorer.scorer import Scorer

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
