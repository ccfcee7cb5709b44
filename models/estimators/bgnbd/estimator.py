"""The BG/NBD estimator: the four parameters fitted by maximum likelihood, predictions per customer.

Fader, Hardie & Lee (2005); the formulas it evaluates, and why they are written the way they are, are in
``models.estimators.bgnbd.formulas``. It follows scikit-learn's estimator rules (hyper-parameters stored in
``__init__``, learning in ``fit``, learnt attributes ending in ``_``), so it clones and pipelines like one.
"""

from __future__ import annotations

import math
import warnings
from typing import Final, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.estimators.bgnbd.checks import (
    PARAM_NAMES,
    Floats,
    Theta,
    as_theta,
    check_params,
    history_from_X,
)
from models.estimators.bgnbd.formulas import (
    conditional_expected_purchases,
    expected_purchases_new_customer,
    loglik_and_gradient,
    loglik_terms,
    probability_alive,
    probability_no_purchase,
)

# Log-parameters are kept within [1e-8, 1e8]: wider than any customer base, narrow enough that exp() and the
# likelihood stay finite. An estimate on the bound means the data do not identify that parameter.
LOG_BOUND: Final = math.log(1e8)
# Largest |d(mean negative log-likelihood)/d(log parameter)| still accepted as a maximum.
GRADIENT_TOLERANCE: Final = 1e-6


class BetaGeoNBD(BaseEstimator):  # type: ignore[misc]
    """BG/NBD fitted by maximum likelihood; predictions per customer from (frequency, recency, T).

    ``penalizer`` adds ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` to the mean negative log-likelihood (the
    convention of the ``lifetimes`` package, so its users' settings carry over). It is only needed when a
    small or odd base lets alpha or b run off to their bounds; leave it at 0 otherwise, because it biases
    every parameter towards 0.

    After ``fit``: ``params_`` (dict r, alpha, a, b); ``params_se_``, their standard errors from the observed
    information (NaN when it is singular, and then ``converged_`` is False too); ``log_likelihood_``, the
    sum of ln L at the estimate without the penalty; ``n_iter_``, ``converged_``, ``optimizer_message_``
    and ``n_customers_``.
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 1000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def fit(self, X: pd.DataFrame | ArrayLike, y: object = None) -> Self:
        """Maximise the likelihood over log(r, alpha, a, b) with L-BFGS-B and the analytic gradient.

        ``X``: a frame with columns frequency, recency, T (other columns are ignored; ``summarise``'s output
        fits as it is), or an (n, 3) array in that order. Identical histories are pooled with weights first,
        which makes day-granular data much cheaper to fit.
        """
        penalizer = float(self.penalizer)
        if not (math.isfinite(penalizer) and penalizer >= 0):
            raise InvalidInput(f"penalizer must be >= 0, got {self.penalizer!r}", field="penalizer")
        if int(self.max_iter) < 1:
            raise InvalidInput(f"max_iter must be >= 1, got {self.max_iter!r}", field="max_iter")
        x, tx, age = history_from_X(X)
        rows, counts = np.unique(np.column_stack([x, tx, age]), axis=0, return_counts=True)
        ux, utx, uage = rows[:, 0], rows[:, 1], rows[:, 2]
        weight = counts.astype(np.float64)
        n = float(weight.sum())

        def objective(log_theta: Floats) -> tuple[float, Floats]:
            theta = np.exp(log_theta)
            ll, grad = loglik_and_gradient(as_theta(theta), ux, utx, uage, weight)
            value = -ll / n + penalizer * float(theta @ theta)
            # chain rule for log-parameters: d/d(log t) = t * d/dt
            return value, (-grad / n + 2 * penalizer * theta) * theta

        # Start from a Poisson fit of the purchase rate (r = 1, alpha = 1 / rate) and a mild dropout, so the
        # time unit of the data does not matter.
        rate = max(float(weight @ ux), 1.0) / max(float(weight @ uage), 1e-9)
        start = np.log(np.clip([1.0, 1.0 / rate, 1.0, 1.0], 1e-6, 1e6))
        result = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * 4,
            options={"maxiter": int(self.max_iter), "ftol": 1e-13, "gtol": 1e-9},
        )
        theta = np.exp(result.x)
        at_bound = np.abs(result.x) > LOG_BOUND - 1e-6
        # L-BFGS-B may stop with "ABNORMAL" when the line search cannot improve on the last digits; a flat
        # gradient is what matters for a maximum.
        flat = float(np.abs(result.jac).max()) <= GRADIENT_TOLERANCE
        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in theta), strict=True))
        self.log_likelihood_ = loglik_and_gradient(as_theta(theta), ux, utx, uage, weight)[0]
        self.params_se_, identified = _standard_errors(result.x, ux, utx, uage, weight, penalizer)
        self.n_iter_ = int(result.nit)
        self.converged_ = (bool(result.success) or flat) and identified and not bool(at_bound.any())
        self.optimizer_message_ = str(result.message)
        self.n_customers_ = int(n)
        if not self.converged_:
            bounded = [p for p, hit in zip(PARAM_NAMES, at_bound, strict=True) if hit]
            if bounded:
                edges = f"[{math.exp(-LOG_BOUND):g}, {math.exp(LOG_BOUND):g}]"
                why = f"{', '.join(bounded)} reached the edge of {edges}"
            elif not identified:
                why = (
                    "the likelihood is flat in some direction (too few repeat purchases to identify all four)"
                )
            else:
                why = str(result.message)
            warnings.warn(
                f"BG/NBD fit did not converge: {why}; consider a penalizer or more history",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _fitted(self) -> Theta:
        check_is_fitted(self, "params_")
        return check_params(self.params_)

    def score(self, X: pd.DataFrame | ArrayLike, y: object = None) -> float:
        """Mean log-likelihood per customer of the histories in X (higher is better)."""
        theta = self._fitted()
        x, tx, age = history_from_X(X)
        return float(loglik_terms(theta, x, tx, age)[0].mean())

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Floats:
        """P(still alive at T). Exactly 1 when frequency is 0.

        In the BG/NBD a customer can only drop out right after a repeat purchase, so one who never came
        back is "alive" however long ago they appeared. That is why P(alive) alone ranks churners badly
        (one-time buyers are the likeliest to be gone); use ``churn_score``, which also weighs how slow a
        buyer the silence suggests.
        """
        self._fitted()
        return probability_alive(self.params_, frequency, recency, T)

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Floats:
        """Expected purchases in the next t units given each history (paper eq. 10)."""
        self._fitted()
        return conditional_expected_purchases(self.params_, t, frequency, recency, T)

    def expected_purchases_new(self, t: ArrayLike) -> Floats:
        """Expected repeat purchases in the first t units of a newly acquired customer (paper eq. 7)."""
        self._fitted()
        return expected_purchases_new_customer(self.params_, t)

    def churn_score(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Floats:
        """P(no purchase at all in the next t units | history): a churn probability over horizon t."""
        self._fitted()
        return probability_no_purchase(self.params_, t, frequency, recency, T)


def _standard_errors(
    log_theta: Floats, x: Floats, tx: Floats, age: Floats, weight: Floats, penalizer: float
) -> tuple[dict[str, float], bool]:
    """Delta-method standard errors from the curvature of the objective at the estimate, and whether that
    curvature identifies every parameter (the information matrix is positive definite).

    The Hessian is a central difference of the analytic gradient in log-parameters; the penalty, if any,
    adds its own curvature 4 * n * penalizer * theta^2 on the diagonal.
    """
    theta_hat = np.exp(log_theta)

    def gradient(lt: Floats) -> Floats:
        theta = np.exp(lt)
        return loglik_and_gradient(as_theta(theta), x, tx, age, weight)[1] * theta

    step = 1e-5
    info = np.empty((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = step
        info[:, j] = -(gradient(log_theta + e) - gradient(log_theta - e)) / (2 * step)
    info = (info + info.T) / 2 + np.diag(4 * float(weight.sum()) * penalizer * theta_hat**2)
    eigenvalues = np.linalg.eigvalsh(info)
    identified = bool(np.isfinite(eigenvalues).all() and eigenvalues[0] > 1e-9 * max(eigenvalues[-1], 1.0))
    se_log = np.sqrt(np.diag(np.linalg.inv(info))) if identified else np.full(4, np.nan)
    return dict(zip(PARAM_NAMES, (float(v) for v in theta_hat * se_log), strict=True)), identified
