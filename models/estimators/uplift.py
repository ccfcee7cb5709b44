"""Uplift: the incremental effect of sending an offer, learnt from randomised history.

Propensity answers "will this customer complete the offer if we send it?"; the bank pays for completions
it *caused*. Customers who would have bought anyway ("sure things") score high on propensity and bring
nothing. The decision log gives what is needed to tell them apart: offers were assigned at random, with a
no-offer control group, and every assignment carries the probability with which it was made.

``TwoModelUplift`` is the T-learner (Kuenzel et al. 2019, "Metalearners for estimating heterogeneous
treatment effects"): one classifier on the treated rows (P(y | x, offer sent)), one on the control rows
(P(y | x, not sent)); the uplift is their difference. Over a customer x offer frame (offer attributes as
``offer_*`` columns), the control rows carry, for each offer, whether the customer met that offer's
condition anyway, so both models take the same features and the uplift is estimated per customer *and*
offer, new offers included. Rows are weighted by the inverse of their logged assignment probability
(normalised within each arm), so arms and strata that were sampled unequally count as in the population.

Its evaluation on a randomised holdout (Qini and uplift curves) is in ``models.evaluation.uplift_curves``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.inputs.frames import FrameSpec, check_binary, check_features, feature_matrix, require_columns


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


class TwoModelUplift(BaseEstimator):  # type: ignore[misc]
    """T-learner over LightGBM: ``predict_uplift = P(y | x, treated) - P(y | x, control)``.

    ``fit(X, y)`` takes the frame with the feature columns, the 0/1 ``treatment_column`` and (optionally)
    the ``propensity_column`` with the logged probability of the arm each row was assigned to.
    """

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
        n_jobs: int = 2,
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

    def _learner(self) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            reg_lambda=self.reg_lambda,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("TwoModelUplift.fit takes the training frame (a DataFrame)")
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
        matrix = feature_matrix(X, features)
        for arm, name in ((True, "treated"), (False, "control")):
            sel = treated == arm
            if len(np.unique(target[sel])) < 2:
                raise InvalidInput(
                    f"the {name} rows need both outcomes to learn from; got {int(sel.sum())} rows"
                )
        self.treated_model_ = self._learner().fit(
            matrix[treated], target[treated], sample_weight=weight[treated]
        )
        self.control_model_ = self._learner().fit(
            matrix[~treated], target[~treated], sample_weight=weight[~treated]
        )
        self.features_ = features
        self.n_features_in_ = len(features)
        self.treated_share_ = float(treated.mean())
        return self

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "treated_model_")
        if isinstance(X, pd.DataFrame):
            return feature_matrix(X, self.features_)
        return np.asarray(X, dtype=np.float64)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(y = 1 | x, offer sent): the plain propensity, from the treated rows only."""
        return np.asarray(self.treated_model_.predict_proba(self._matrix(X)), dtype=np.float64)[:, 1]

    def predict_control(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(y = 1 | x, no offer): would have met the offer's condition anyway."""
        return np.asarray(self.control_model_.predict_proba(self._matrix(X)), dtype=np.float64)[:, 1]

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        matrix = self._matrix(X)
        return np.asarray(self.predict_treated(matrix) - self.predict_control(matrix), dtype=np.float64)
