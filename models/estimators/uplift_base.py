"""What every uplift learner shares: the frame it is fitted on, the inverse-probability weights, the LightGBM
base learners and the pair of probability models the registry serves.

A learner's ``fit(X, y)`` takes the campaign frame: the feature columns, the 0/1 ``treatment_column`` and
(optionally) the ``propensity_column``, the logged probability of the arm each row was assigned to. The
checks and the choice of feature columns live here once, so the S-, T-, X-, DR-learners and the response
ranking (``models.estimators.uplift``, ``uplift_meta``) refuse the same inputs with the same words.

Serving contract (``models.registry.uplift_scorers``): the service predicts uplift as ``P(y | x, sent) -
P(y | x, not sent)`` from two boosters over the same columns. A T-learner has those two models; the others
do not, so ``served_boosters`` distils the learner's own treated and control probabilities (``treated`` and
``treated - uplift``) into two LightGBM regressions on the log-odds, fitted on the training rows. The
distillation's fidelity (rank correlation with the learner's uplift) is reported, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.inputs.frames import FrameSpec, check_binary, check_features, feature_matrix, require_columns

EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS] before taking log-odds


def ipw_weights(treated: np.ndarray, probability: np.ndarray | None) -> np.ndarray:
    """1 / P(assigned arm), normalised to mean 1 within each arm; ones when no probabilities were logged."""
    treated = np.asarray(treated, dtype=bool)
    if probability is None:
        return np.ones(len(treated))
    p = np.asarray(probability, dtype=np.float64)
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"assignment probability must be in (0, 1], got {p[row]!r} at row {row}",
            column="probability",
            row=row,
        )
    w = 1.0 / p
    for arm in (True, False):
        sel = treated == arm
        if sel.any():
            w[sel] = w[sel] / w[sel].mean()
    return w


@dataclass(frozen=True, slots=True)
class UpliftData:
    """A checked campaign frame as arrays: the feature matrix, outcome, arm, IPW weight and P(treated)."""

    matrix: np.ndarray
    y: np.ndarray  # int8 0/1
    treated: np.ndarray  # bool
    weight: np.ndarray
    p_treated: np.ndarray  # probability of being treated (the logged one, or the treated share)
    features: list[str]


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.asarray(np.log(q / (1.0 - q)), dtype=np.float64)


class UpliftLearner(BaseEstimator):  # type: ignore[misc]
    """The base of the uplift learners: hyper-parameters, input checks and the LightGBM base learners.

    Subclasses implement ``_fit(data)``, ``predict_treated`` (P(y | x, treated): the response ranking) and
    ``predict_uplift``; ``served_boosters`` gives the pair the registry logs.

    ``n_jobs`` is 1 by default: these learners are small (a selector fits dozens of them), and LightGBM's
    OpenMP threads spin while they wait for each other, so on a machine with busy cores two threads were
    measured up to several hundred times slower than one (0.04 s against 18 s for a T-learner on 6,000 rows).
    """

    name = "uplift"

    def __init__(
        self,
        *,
        treatment_column: str = "treated",
        propensity_column: str | None = "probability",
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = ("customer_id", "offer_id", "as_of"),
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        reg_lambda: float = 1.0,
        n_jobs: int = 1,  # see the class docstring
        random_state: int = 0,
    ) -> None:
        self.treatment_column = treatment_column
        self.propensity_column = propensity_column
        self.features = features
        self.exclude = exclude
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "reg_lambda": self.reg_lambda,
            "n_jobs": self.n_jobs,
            "random_state": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def _learner(self) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(**self._lgb_params())

    def _regressor(self) -> lgb.LGBMRegressor:
        return lgb.LGBMRegressor(**self._lgb_params())

    def _prepare(self, X: Any, y: Any) -> UpliftData:
        """Check the frame and return it as arrays (``InvalidInput`` naming what is wrong)."""
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput(f"{type(self).__name__}.fit takes the training frame (a DataFrame)")
        if len(X) != len(y):
            raise InvalidInput(f"the frame has {len(X)} rows but the outcome {len(y)}", field="y")
        target = check_binary(y)
        require_columns(X, [self.treatment_column], what="uplift frame")
        treated = check_binary(X[self.treatment_column], self.treatment_column).astype(bool)
        probability = None
        if self.propensity_column is not None:
            require_columns(X, [self.propensity_column], what="uplift frame")
            probability = X[self.propensity_column].to_numpy(dtype=np.float64, na_value=np.nan)
        label = str(y.name) if isinstance(y, pd.Series) and y.name in X.columns else None
        reserved = (
            *self.exclude,
            self.treatment_column,
            *([self.propensity_column] if self.propensity_column else []),
            *([label] if label else []),  # the frame usually still carries its outcome: never learn from it
        )
        features = (
            list(self.features)
            if self.features is not None
            else FrameSpec(label="", keys=(), cutoff="", exclude=tuple(reserved)).feature_columns(X)
        )
        if label is not None and label in features:
            raise InvalidInput(f"the outcome {label!r} is listed as a feature", column=label)
        if not features:
            raise InvalidInput("no numeric feature columns to learn uplift from", field="features")
        check_features(X, features)
        weight = ipw_weights(treated, probability)
        for arm, name in ((True, "treated"), (False, "control")):
            sel = treated == arm
            if len(np.unique(target[sel])) < 2:
                raise InvalidInput(
                    f"the {name} rows need both outcomes to learn from; got {int(sel.sum())} rows"
                )
        # The propensity the X- and DR-learners need is P(this row's arm | x) within this comparison (one
        # offer against the control group). A row logs only its own arm's probability: 1 - p of a control
        # row is the chance of ANY offer in a campaign of several, not of this one. The weights (1 / p,
        # normalised within each arm) turn the rows into a balanced pseudo-population in which every row
        # was treated with the same probability, the treated share; the learners fit with those weights.
        p_treated = np.clip(np.full(len(treated), float(treated.mean())), EPS, 1.0 - EPS)
        return UpliftData(feature_matrix(X, features), target, treated, weight, p_treated, features)

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        data = self._prepare(X, y)
        self._fit(data)
        self.features_ = data.features
        self.n_features_in_ = len(data.features)
        self.treated_share_ = float(data.treated.mean())
        self.train_matrix_rows_ = len(data.y)
        return self

    def _fit(self, data: UpliftData) -> None:
        raise NotImplementedError

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "features_")
        if isinstance(X, pd.DataFrame):
            return feature_matrix(X, self.features_)
        return np.asarray(X, dtype=np.float64)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def native_boosters(self) -> tuple[lgb.Booster, lgb.Booster] | None:
        """The (treated, control) classifiers when the learner has them over the features alone."""
        return None

    def served_boosters(
        self, X: pd.DataFrame | np.ndarray, *, n_estimators: int = 300, num_leaves: int = 31
    ) -> tuple[lgb.Booster, lgb.Booster]:
        """Two boosters whose raw scores are the log-odds of P(y | x, sent) and P(y | x, not sent), so that
        their sigmoid difference is this learner's uplift: the learner's own models when it has them (the
        T-learner), else regressions on the log-odds of ``treated`` and ``treated - uplift`` fitted on ``X``
        (the training rows)."""
        native = self.native_boosters()
        if native is not None:
            return native
        matrix = self._matrix(X)
        treated = np.clip(self.predict_treated(matrix), EPS, 1.0 - EPS)
        control = np.clip(treated - self.predict_uplift(matrix), EPS, 1.0 - EPS)
        params = {
            **self._lgb_params(),
            "n_estimators": n_estimators,
            "num_leaves": num_leaves,
            "learning_rate": 0.1,
            "min_child_samples": 5,
            "subsample": 1.0,
            "subsample_freq": 0,
            "reg_lambda": 0.0,
        }
        boosters = [lgb.LGBMRegressor(**params).fit(matrix, logit(p)).booster_ for p in (treated, control)]
        return boosters[0], boosters[1]
