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

The S-, X- and DR-learners and the response ranking are ``models.estimators.uplift_meta``; the choice
among them by cross-validated Qini is ``models.estimators.uplift_select``. Their evaluation on a randomised
holdout (Qini and uplift curves) is in ``models.evaluation.uplift_curves``.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.estimators.uplift_base import UpliftData, UpliftLearner, ipw_weights

__all__ = ["TwoModelUplift", "ipw_weights"]


class TwoModelUplift(UpliftLearner):
    """T-learner over LightGBM: ``predict_uplift = P(y | x, treated) - P(y | x, control)``.

    ``fit(X, y)`` takes the frame with the feature columns, the 0/1 ``treatment_column`` and (optionally)
    the ``propensity_column`` with the logged probability of the arm each row was assigned to.
    """

    name = "t_learner"

    def _fit(self, data: UpliftData) -> None:
        t, m, w = data.treated, data.matrix, data.weight
        self.treated_model_ = self._learner().fit(m[t], data.y[t], sample_weight=w[t])
        self.control_model_ = self._learner().fit(m[~t], data.y[~t], sample_weight=w[~t])

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(y = 1 | x, offer sent): the plain propensity, from the treated rows only."""
        return np.asarray(self.treated_model_.predict_proba(self._matrix(X)), dtype=np.float64)[:, 1]

    def predict_control(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(y = 1 | x, no offer): would have met the offer's condition anyway."""
        return np.asarray(self.control_model_.predict_proba(self._matrix(X)), dtype=np.float64)[:, 1]

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        matrix = self._matrix(X)
        return np.asarray(self.predict_treated(matrix) - self.predict_control(matrix), dtype=np.float64)

    def native_boosters(self) -> tuple[lgb.Booster, lgb.Booster]:
        return self.treated_model_.booster_, self.control_model_.booster_
