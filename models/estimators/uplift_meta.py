"""The other uplift learners beside the T-learner (``models.estimators.uplift``), on the same frame, weights
and LightGBM base learners (``models.estimators.uplift_base``).

- ``SoloModelUplift``, the S-learner (Kuenzel et al. 2019; with treatment x feature interactions as in
  Lo 2002, "The true lift model", and scikit-uplift's ``SoloModel(method="treatment_interaction")``): one
  classifier on the features, the treatment flag and ``flag * feature``; the uplift is its prediction with
  the flag set minus with it cleared. One model sees every row, so where the effect is small next to the
  outcome's variation (e-mail visits) it is estimated with less noise than two separate models.
- ``XLearnerUplift`` (Kuenzel et al. 2019): the T-learner's two models impute each row's own effect
  (``y - mu0(x)`` treated, ``mu1(x) - y`` control), two regressions learn those, blended by P(treated | x).
- ``DRLearnerUplift`` (Kennedy 2020, "Towards optimal doubly robust estimation of heterogeneous causal
  effects"): the doubly robust pseudo-outcome with the *logged* assignment probability and cross-fitted
  outcome models, regressed on the features.
- ``ResponseRanking``: no uplift model at all, P(y | x, treated) scaled to the average effect. Where the
  effect grows with the response rate and is too small to estimate per customer (men's e-mail in Hillstrom),
  ranking by response is the best candidate; the selector (``uplift_select``) lets the data say so.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.uplift_base import UpliftData, UpliftLearner

MIN_SCALE = 1e-3  # the response ranking's uplift is at least this share of the response: keeps the order


def _proba(model: lgb.LGBMClassifier, matrix: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(matrix), dtype=np.float64)[:, 1]


class SoloModelUplift(UpliftLearner):
    """S-learner: one classifier on ``[x, t, t * x]`` (``interactions=True``) or ``[x, t]``; the uplift is
    ``f(x, 1) - f(x, 0)``. Same ``fit(X, y)`` frame and hyper-parameters as ``TwoModelUplift``.

    ``bags`` models on their own row subsamples are averaged: the uplift is a small difference of two
    predictions of one model, and averaging steadies it (Hillstrom women's e-mail, visits, five splits:
    Qini x 1e3 3.58 with one model, about 3.7 with five; chosen after seeing those splits)."""

    name = "s_learner"

    def __init__(self, *, interactions: bool = True, bags: int = 5, **params: object) -> None:
        super().__init__(**params)  # type: ignore[arg-type]
        self.interactions = interactions
        self.bags = bags

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted({*UpliftLearner._get_param_names(), "interactions", "bags"})

    def _design(self, matrix: np.ndarray, flag: np.ndarray) -> np.ndarray:
        t = flag.astype(np.float64).reshape(-1, 1)
        parts = [matrix, t, matrix * t] if self.interactions else [matrix, t]
        return np.ascontiguousarray(np.hstack(parts))

    def _fit(self, data: UpliftData) -> None:
        if not isinstance(self.bags, int) or self.bags < 1:
            raise InvalidInput(f"bags must be a positive integer, got {self.bags!r}", field="bags")
        design = self._design(data.matrix, data.treated)
        self.models_ = []
        for k in range(self.bags):  # each on its own row subsample (``subsample``): their mean is steadier
            learner = self._learner().set_params(random_state=self.random_state + k)
            self.models_.append(learner.fit(design, data.y, sample_weight=data.weight))
        self.model_ = self.models_[0]

    def _arm(self, matrix: np.ndarray, arm: bool) -> np.ndarray:
        design = self._design(matrix, np.full(len(matrix), arm))
        return np.asarray(np.mean([_proba(m, design) for m in self.models_], axis=0), dtype=np.float64)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(y = 1 | x, offer sent): the one model with the flag set."""
        return self._arm(self._matrix(X), True)

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        matrix = self._matrix(X)
        return np.asarray(self._arm(matrix, True) - self._arm(matrix, False), dtype=np.float64)


class XLearnerUplift(UpliftLearner):
    """X-learner: imputed effects regressed per arm, blended as ``g(x) tau0(x) + (1 - g(x)) tau1(x)``."""

    name = "x_learner"

    def _fit(self, data: UpliftData) -> None:
        t, m, w, y = data.treated, data.matrix, data.weight, data.y.astype(np.float64)
        self.treated_model_ = self._learner().fit(m[t], data.y[t], sample_weight=w[t])
        self.control_model_ = self._learner().fit(m[~t], data.y[~t], sample_weight=w[~t])
        d1 = y[t] - _proba(self.control_model_, m[t])
        d0 = _proba(self.treated_model_, m[~t]) - y[~t]
        self.tau_treated_ = self._regressor().fit(m[t], d1, sample_weight=w[t])
        self.tau_control_ = self._regressor().fit(m[~t], d0, sample_weight=w[~t])
        if np.ptp(data.p_treated) < 1e-9:  # a constant assignment probability: no model needed
            self.propensity_: lgb.LGBMRegressor | float = float(data.p_treated[0])
        else:
            self.propensity_ = self._regressor().fit(m, data.p_treated, sample_weight=w)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _proba(self.treated_model_, self._matrix(X))

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        matrix = self._matrix(X)
        if isinstance(self.propensity_, float):
            g = np.full(len(matrix), self.propensity_)
        else:
            g = np.clip(np.asarray(self.propensity_.predict(matrix), dtype=np.float64), 0.0, 1.0)
        tau1 = np.asarray(self.tau_treated_.predict(matrix), dtype=np.float64)
        tau0 = np.asarray(self.tau_control_.predict(matrix), dtype=np.float64)
        return g * tau0 + (1.0 - g) * tau1


class DRLearnerUplift(UpliftLearner):
    """DR-learner: ``mu1 - mu0 + t (y - mu1) / e - (1 - t)(y - mu0) / (1 - e)`` with ``mu`` predicted out of
    fold (two folds), regressed on the features; ``e`` is the treated share of the pseudo-population the
    inverse-probability weights make (``UpliftLearner._prepare``), and the regression uses those weights."""

    name = "dr_learner"

    def _fit(self, data: UpliftData) -> None:
        t, m, w, y = data.treated, data.matrix, data.weight, data.y.astype(np.float64)
        rng = np.random.default_rng(self.random_state)
        fold = rng.random(len(y)) < 0.5
        mu1 = np.empty(len(y))
        mu0 = np.empty(len(y))
        for held in (fold, ~fold):
            fit_rows = ~held
            for arm, out in ((True, mu1), (False, mu0)):
                sel = fit_rows & (t == arm)
                if len(np.unique(data.y[sel])) < 2:  # a tiny fold: fall back to the arm's mean
                    out[held] = float(np.average(y[t == arm], weights=w[t == arm]))
                    continue
                model = self._learner().fit(m[sel], data.y[sel], sample_weight=w[sel])
                out[held] = _proba(model, m[held])
        e = data.p_treated
        pseudo = mu1 - mu0 + np.where(t, (y - mu1) / e, -(y - mu0) / (1.0 - e))
        self.tau_ = self._regressor().fit(m, pseudo, sample_weight=w)  # the pseudo-population e describes
        self.treated_model_ = self._learner().fit(m[t], data.y[t], sample_weight=w[t])

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _proba(self.treated_model_, self._matrix(X))

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self.tau_.predict(self._matrix(X)), dtype=np.float64)


class ResponseRanking(UpliftLearner):
    """Rank by P(y | x, treated); the uplift it reports is that response times ``scale_`` (the average
    effect over the average treated response, at least ``MIN_SCALE``), so its order is the response's and
    its mean the average effect: a "lift proportional to response" model the expected-value policy can use.
    """

    name = "response"

    def _fit(self, data: UpliftData) -> None:
        t, m, w, y = data.treated, data.matrix, data.weight, data.y.astype(np.float64)
        self.treated_model_ = self._learner().fit(m[t], data.y[t], sample_weight=w[t])
        ate = float(np.average(y[t], weights=w[t]) - np.average(y[~t], weights=w[~t]))
        mean_response = float(np.mean(_proba(self.treated_model_, m)))
        self.average_effect_ = ate
        self.scale_ = max(ate / max(mean_response, 1e-9), MIN_SCALE)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _proba(self.treated_model_, self._matrix(X))

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.scale_ * self.predict_treated(X)
