"""The BG/NBD customer-base model: who is still buying, and how much will they buy next?

Fader, Hardie & Lee (2005), "'Counting your customers' the easy way: an alternative to the Pareto/NBD
model", Marketing Science 24(2), 275-284. A customer's history is summarised by three numbers, measured in
``unit_days`` units (weeks by default) from the start of the day of their first purchase:

- ``frequency`` x: repeat purchases, i.e. purchase *days* after the first one (see ``summarise``);
- ``recency`` t_x: the age at their last purchase (0 when x = 0);
- ``T``: their age at the cutoff ``as_of``.

The story behind the model: while alive, a customer buys as a Poisson process with rate lambda; after each
repeat purchase they drop out for good with probability p. Across customers lambda ~ Gamma(r, alpha) (shape r,
rate alpha) and p ~ Beta(a, b). Four numbers describe the whole base, and every quantity below follows from
them in closed form:

- likelihood (paper eq. 6), computed on the log scale with ``gammaln`` and ``logaddexp``::

      ln L = ln G(r+x) - ln G(r) + r ln alpha + ln G(a+b) + ln G(b+x) - ln G(b) - ln G(a+b+x)
             + ln( (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) )

- P(alive | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))   (Fader, Hardie & Lee 2008,
  "Computing P(alive) using the BG/NBD model"), evaluated as a logistic function of the log-odds;
- E[Y(t) | x, t_x, T], purchases in (T, T+t] (paper eq. 10)::

      (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)] * P(alive),
      z = t/(alpha+T+t)

  As printed, the hypergeometric term grows like (1-z)^(a-1-r-x) while the power in front of it vanishes
  like (1-z)^(r+x): for a frequent buyer and a long horizon one overflows and the other underflows (the
  spreadsheet "#NUM!" problem of Fader & Hardie's note 027). Euler's transformation
  2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
  (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose first two parameters do not grow with x: it is bounded
  and converges fast for every customer. Both forms are the same number where the printed one is finite.
- E[X(t)] for a new customer (paper eq. 7) is the same expression with x = t_x = T = 0;
- P(Y(t) = 0 | x, t_x, T), no purchase in (T, T+t]: a customer dead at T buys nothing; one alive at T has
  lambda ~ Gamma(r+x, alpha+T) a posteriori (the alive part of the likelihood is
  (1-p)^x lambda^x e^(-lambda T)), and since dropout happens only right after a purchase, "no purchase in
  t" is just "the next Poisson arrival is later than t", probability E[e^(-lambda t)]. Hence::

      P(Y(t) = 0 | x, t_x, T) = 1 - P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x))

  This is ``churn_score``: the model's probability that the customer makes no purchase over the horizon,
  the same event as the platform's churn label ("no qualifying activity in the N days after the cutoff").

The two removable singularities of eq. 10 (a = 1 and a+b+x = 1) are avoided by evaluating within 1e-7 of
them, which moves the answer by a relative O(1e-7).

Why not the ``lifetimes`` package: it is archived and unmaintained (no release since 2020), so nothing
keeps it working with the pandas 3 / numpy 2 this project runs on, and it brings autograd and dill along.
This module needs only numpy and scipy, and is checked against the paper's published CDNOW figures, against
direct numerical integration, and against simulations of the model's own story (``simulate_bgnbd``).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping
from typing import Any, Final, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput

PARAM_NAMES: Final = ("r", "alpha", "a", "b")
RFM_COLUMNS: Final = ("frequency", "recency", "T")
# Log-parameters are kept within [1e-8, 1e8]: wider than any customer base, narrow enough that exp() and the
# likelihood stay finite. An estimate on the bound means the data do not identify that parameter.
LOG_BOUND: Final = math.log(1e8)
SINGULAR_GAP: Final = 1e-7
# Largest |d(mean negative log-likelihood)/d(log parameter)| still accepted as a maximum.
GRADIENT_TOLERANCE: Final = 1e-6
Floats = NDArray[np.float64]
Theta = tuple[float, float, float, float]


# --- summarising a transaction log ----------------------------------------------------------------------


def summarise(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    time_col: str = "occurred_at",
    as_of: dt.datetime | dt.date | pd.Timestamp,
    unit_days: float = 7,
) -> pd.DataFrame:
    """Each customer's (frequency, recency, T) as of ``as_of``, from the events strictly before it.

    A purchase is a UTC calendar *day* with at least one event: the model's Poisson process counts purchase
    occasions, and a bank customer's several card payments in one day are one occasion, not a burst of
    independent ones. So ``frequency`` is the number of distinct event days minus one; each customer's clock
    starts at 00:00 UTC of their first event day, ``recency`` is the start of their last event day on that
    clock and ``T`` is ``as_of`` on it, all in units of ``unit_days`` days (7: weeks, as in the paper).

    Customers with no event before ``as_of`` get no row: the model says nothing about people who have not
    bought yet. Filtering to qualifying event types is the caller's job. ``as_of`` must be timezone-aware
    (a plain date means 00:00 UTC of that day); the time column must hold timezone-aware timestamps.
    Returns a frame indexed by customer id (sorted), columns ``frequency`` (int64), ``recency`` and ``T``
    (float64), which ``BetaGeoNBD.fit`` takes as it is.
    """
    cutoff = _utc_cutoff(as_of)
    if not (math.isfinite(unit_days) and unit_days > 0):
        raise InvalidInput(
            f"unit_days must be a positive number of days, got {unit_days!r}", field="unit_days"
        )
    missing = [c for c in (customer_col, time_col) if c not in transactions.columns]
    if missing:
        raise InvalidInput(f"transactions lack column(s) {', '.join(missing)}", field=missing[0])
    times = transactions[time_col]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise InvalidInput(
            f"column {time_col!r} must hold timezone-aware timestamps, got dtype {times.dtype}",
            field=time_col,
        )
    for col, values in ((customer_col, transactions[customer_col]), (time_col, times)):
        bad = values.isna().to_numpy()
        if bad.any():
            row = transactions.index[int(np.argmax(bad))]
            raise InvalidInput(f"column {col!r} is empty at row {row!r}", field=col, row=row)

    before = (times < cutoff).to_numpy()
    customers = transactions[customer_col]
    if not before.any():
        return pd.DataFrame(
            {"frequency": np.zeros(0, np.int64), "recency": np.zeros(0), "T": np.zeros(0)},
            index=pd.Index(customers.iloc[:0], name=customer_col),
        )
    days = times[before].dt.tz_convert("UTC").dt.floor("D").reset_index(drop=True)
    per = days.groupby(customers[before].reset_index(drop=True), sort=True).agg(["min", "max", "nunique"])
    seconds = unit_days * 86_400.0
    out = pd.DataFrame(
        {
            "frequency": (per["nunique"] - 1).astype("int64"),
            "recency": (per["max"] - per["min"]).dt.total_seconds() / seconds,
            "T": (cutoff - per["min"]).dt.total_seconds() / seconds,
        },
        index=per.index.rename(customer_col),
    )
    return out


def _utc_cutoff(as_of: dt.datetime | dt.date | pd.Timestamp) -> pd.Timestamp:
    if isinstance(as_of, dt.datetime):  # pd.Timestamp is one too
        if as_of.tzinfo is None:
            raise InvalidInput(
                "as_of must be timezone-aware (e.g. 2025-06-01T00:00:00+00:00)",
                field="as_of",
                value=str(as_of),
            )
        return pd.Timestamp(as_of).tz_convert("UTC")
    if isinstance(as_of, dt.date):
        return pd.Timestamp(as_of.year, as_of.month, as_of.day, tz="UTC")
    raise InvalidInput(f"as_of must be a datetime or a date, got {type(as_of).__name__}", field="as_of")


# --- input checks ---------------------------------------------------------------------------------------


def _params(params: Mapping[str, float]) -> Theta:
    missing = [p for p in PARAM_NAMES if p not in params]
    if missing:
        raise InvalidInput(f"BG/NBD parameters lack {', '.join(missing)}", field=missing[0])
    values = tuple(float(params[p]) for p in PARAM_NAMES)
    for name, value in zip(PARAM_NAMES, values, strict=True):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(
                f"BG/NBD parameter {name} must be positive and finite, got {value!r}", field=name
            )
    return _theta(values)


def _theta(values: Any) -> Theta:
    r, alpha, a, b = (float(v) for v in values)
    return r, alpha, a, b


def _as_float(values: ArrayLike, name: str) -> Floats:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric ({exc})", field=name) from exc
    return arr


def _first(mask: NDArray[np.bool_], labels: pd.Index | None) -> Any:
    pos = int(np.argmax(mask.ravel()))
    return labels[pos] if labels is not None else pos


def _check_history(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, labels: pd.Index | None = None
) -> tuple[Floats, Floats, Floats]:
    """Broadcast and validate customer histories; the message names the field and the first bad row."""
    x, tx, age = (_as_float(v, n) for v, n in zip((frequency, recency, T), RFM_COLUMNS, strict=True))
    try:
        x, tx, age = np.broadcast_arrays(x, tx, age)
    except ValueError as exc:
        raise InvalidInput(
            f"frequency, recency and T have incompatible shapes ({exc})", field="frequency"
        ) from exc

    def fail(mask: NDArray[np.bool_], field: str, why: str) -> None:
        if mask.any():
            row = _first(mask, labels)
            raise InvalidInput(
                f"{field} {why} at row {row!r} ({int(mask.sum())} row(s) in all)", field=field, row=row
            )

    for arr, name in ((x, "frequency"), (tx, "recency"), (age, "T")):
        fail(~np.isfinite(arr), name, "is missing or infinite")
        fail(arr < 0, name, "is negative")
    fail(x != np.floor(x), "frequency", "is not a whole number of repeat purchases")
    fail(tx > age * (1 + 1e-12), "recency", "is larger than T (a purchase after the cutoff)")
    fail((x > 0) & (tx == 0), "recency", "is 0 although frequency > 0 (a repeat purchase needs recency > 0)")
    fail((x == 0) & (tx != 0), "recency", "is not 0 although frequency is 0")
    return x, tx, age


def _check_horizon(t: ArrayLike) -> Floats:
    horizon = _as_float(t, "t")
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise InvalidInput("the horizon t must be finite and >= 0", field="t")
    return horizon


def _history_from_X(X: pd.DataFrame | ArrayLike) -> tuple[Floats, Floats, Floats]:
    if isinstance(X, pd.DataFrame):
        missing = [c for c in RFM_COLUMNS if c not in X.columns]
        if missing:
            raise InvalidInput(
                f"X lacks column(s) {', '.join(missing)}; expected frequency, recency, T", field=missing[0]
            )
        x, tx, age = _check_history(
            X["frequency"].to_numpy(), X["recency"].to_numpy(), X["T"].to_numpy(), labels=X.index
        )
    else:
        arr = _as_float(X, "X")
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InvalidInput(
                f"X must have three columns (frequency, recency, T), got shape {arr.shape}", field="X"
            )
        x, tx, age = _check_history(arr[:, 0], arr[:, 1], arr[:, 2])
    if x.size == 0:
        raise InvalidInput("X has no customers: nothing to fit", field="X")
    return x, tx, age


# --- the model's formulas, as pure functions of the parameters -------------------------------------------


def _loglik_terms(
    theta: Theta, x: Floats, tx: Floats, age: Floats
) -> tuple[Floats, Floats, Floats, NDArray[np.bool_], Floats]:
    """Per-customer ln L with the pieces its gradient needs: (ll, A3, A4, has_repeat, b+x-1)."""
    r, alpha, a, b = theta
    rx = r + x
    has_repeat = x > 0
    bx1 = np.where(has_repeat, b + x - 1, 1.0)
    const = (
        special.gammaln(rx)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -rx * np.log(alpha + age)
    a4 = np.where(has_repeat, np.log(a) - np.log(bx1) - rx * np.log(alpha + tx), -np.inf)
    ll: Floats = const + np.logaddexp(a3, a4)
    return ll, a3, a4, has_repeat, bx1


def log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Floats:
    """ln L(r, alpha, a, b | x, t_x, T) for each customer (paper eq. 6)."""
    theta = _params(params)
    x, tx, age = _check_history(frequency, recency, T)
    return _loglik_terms(theta, x, tx, age)[0]


def _loglik_and_gradient(
    theta: Theta, x: Floats, tx: Floats, age: Floats, weight: Floats
) -> tuple[float, Floats]:
    """Weighted sum of ln L and its gradient with respect to (r, alpha, a, b)."""
    r, alpha, a, b = theta
    ll, a3, a4, has_repeat, bx1 = _loglik_terms(theta, x, tx, age)
    top = np.logaddexp(a3, a4)
    w3 = np.exp(a3 - top)
    w4 = np.exp(a4 - top)  # 0 where x == 0
    rx = r + x
    psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + x)
    d_r = special.digamma(rx) - special.digamma(r) + np.log(alpha) - w3 * np.log(alpha + age)
    d_r = d_r - np.where(has_repeat, w4 * np.log(alpha + tx), 0.0)
    d_alpha = r / alpha - w3 * rx / (alpha + age) - w4 * rx / (alpha + tx)
    d_a = psi_ab - psi_abx + w4 / a
    d_b = psi_ab + special.digamma(b + x) - special.digamma(b) - psi_abx - w4 / bx1
    grad = np.array([weight @ d_r, weight @ d_alpha, weight @ d_a, weight @ d_b])
    return float(weight @ ll), grad


def probability_alive(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Floats:
    """P(alive at T | x, t_x, T); exactly 1 for customers without a repeat purchase (see ``p_alive``)."""
    r, alpha, a, b = _params(params)
    x, tx, age = _check_history(frequency, recency, T)
    return _p_alive(r, alpha, a, b, x, tx, age)


def _p_alive(r: float, alpha: float, a: float, b: float, x: Floats, tx: Floats, age: Floats) -> Floats:
    has_repeat = x > 0
    bx1 = np.where(has_repeat, b + x - 1, 1.0)
    log_odds_dead = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
    return np.where(has_repeat, special.expit(-log_odds_dead), 1.0)


def _away_from(value: float, singular: float) -> float:
    if abs(value - singular) < SINGULAR_GAP:
        return singular + math.copysign(SINGULAR_GAP, value - singular)
    return value


def _expected_if_alive(
    r: float, alpha: float, a: float, b: float, t: Floats, x: Floats, age: Floats
) -> Floats:
    """E[purchases in (T, T+t] | alive at T, x, T] in the overflow-free Euler form (module docstring)."""
    a = _away_from(a, 1.0)
    c = a + b + x - 1
    c = np.where(np.abs(c) < SINGULAR_GAP, SINGULAR_GAP, c)
    log_stay = -np.log1p(t / (alpha + age))  # ln((alpha+T)/(alpha+T+t)) = ln(1-z)
    z = -np.expm1(log_stay)
    tail = np.exp((a - 1) * log_stay) * special.hyp2f1(a + b - 1 - r, a - 1, c, z)
    expected: Floats = c / (a - 1) * (1 - tail)
    return expected


def conditional_expected_purchases(
    params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Floats:
    """E[purchases in (T, T+t] | x, t_x, T] (paper eq. 10), broadcast over customers and horizons."""
    r, alpha, a, b = _params(params)
    horizon = _check_horizon(t)
    x, tx, age = _check_history(frequency, recency, T)
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    return _p_alive(r, alpha, a, b, x, tx, age) * _expected_if_alive(r, alpha, a, b, horizon, x, age)


def customer_outlook(
    params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[Floats, Floats, Floats]:
    """P(alive at T), E[purchases in (T, T+t]] and P(no purchase in (T, T+t]) per customer, equal to
    ``probability_alive``, ``conditional_expected_purchases`` and ``probability_no_purchase``.

    The churn model reads all three for every customer it scores: one call validates the histories and
    computes P(alive) once, not once per prediction, which on the scoring path's small batches is most of
    the cost (numpy calls on a dozen rows, not arithmetic).
    """
    r, alpha, a, b = _params(params)
    horizon = _check_horizon(t)
    x, tx, age = _check_history(frequency, recency, T)
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    alive = _p_alive(r, alpha, a, b, x, tx, age)
    expected: Floats = alive * _expected_if_alive(r, alpha, a, b, horizon, x, age)
    quiet: Floats = 1 - alive * (1 - np.exp(-(r + x) * np.log1p(horizon / (alpha + age))))
    return alive, expected, quiet


def expected_purchases_new_customer(params: Mapping[str, float], t: ArrayLike) -> Floats:
    """E[X(t)]: repeat purchases in the first t units of a new customer's life (paper eq. 7)."""
    r, alpha, a, b = _params(params)
    horizon = _check_horizon(t)
    zero = np.zeros_like(horizon)
    return _expected_if_alive(r, alpha, a, b, horizon, zero, zero)


def probability_no_purchase(
    params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Floats:
    """P(no purchase in (T, T+t] | x, t_x, T): derived in the module docstring."""
    r, alpha, a, b = _params(params)
    horizon = _check_horizon(t)
    x, tx, age = _check_history(frequency, recency, T)
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    quiet_if_alive = np.exp(-(r + x) * np.log1p(horizon / (alpha + age)))
    quiet: Floats = 1 - _p_alive(r, alpha, a, b, x, tx, age) * (1 - quiet_if_alive)
    return quiet


# --- the estimator --------------------------------------------------------------------------------------


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
        x, tx, age = _history_from_X(X)
        rows, counts = np.unique(np.column_stack([x, tx, age]), axis=0, return_counts=True)
        ux, utx, uage = rows[:, 0], rows[:, 1], rows[:, 2]
        weight = counts.astype(np.float64)
        n = float(weight.sum())

        def objective(log_theta: Floats) -> tuple[float, Floats]:
            theta = np.exp(log_theta)
            ll, grad = _loglik_and_gradient(_theta(theta), ux, utx, uage, weight)
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
        self.log_likelihood_ = _loglik_and_gradient(_theta(theta), ux, utx, uage, weight)[0]
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
        return _params(self.params_)

    def score(self, X: pd.DataFrame | ArrayLike, y: object = None) -> float:
        """Mean log-likelihood per customer of the histories in X (higher is better)."""
        theta = self._fitted()
        x, tx, age = _history_from_X(X)
        return float(_loglik_terms(theta, x, tx, age)[0].mean())

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Floats:
        """P(still alive at T). Exactly 1 when frequency is 0.

        In the BG/NBD a customer can only drop out right after a repeat purchase, so one who never came
        back is "alive" however long ago they appeared. That is why P(alive) alone ranks churners badly
        (one-time buyers are the likeliest to be gone); use ``churn_score``, which also weighs how slow a
        buyer the silence suggests.
        """
        r, alpha, a, b = self._fitted()
        x, tx, age = _check_history(frequency, recency, T)
        return _p_alive(r, alpha, a, b, x, tx, age)

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
        return _loglik_and_gradient(_theta(theta), x, tx, age, weight)[1] * theta

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


# --- simulation from the generative process --------------------------------------------------------------


def simulate_bgnbd(
    n_customers: int,
    T: float | ArrayLike,
    params: Mapping[str, float],
    seed: int | np.random.Generator,
    *,
    holdout: float = 0.0,
) -> pd.DataFrame:
    """Histories drawn from the BG/NBD story itself, for tests and for sizing experiments.

    Each customer gets lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b) and a dropout point D ~ Geometric(p)
    (they leave right after their D-th repeat purchase). While alive they buy as a Poisson process: given
    N purchases in (0, T], x = min(N, D), and the x-th of N uniform arrival times is T * Beta(x, N-x+1), so no
    event is generated one by one. ``T`` is one age for all or one per customer.

    Columns: ``frequency``, ``recency``, ``T`` and, as latent truth never seen in real data, ``alive``
    (not yet dropped out at T). With ``holdout`` > 0, also ``frequency_holdout``: purchases in
    (T, T + holdout], from the same lambda, p and D.
    """
    r, alpha, a, b = _params(params)
    if int(n_customers) < 1:
        raise InvalidInput(f"n_customers must be >= 1, got {n_customers!r}", field="n_customers")
    n = int(n_customers)
    age = np.broadcast_to(_as_float(T, "T"), (n,)).astype(np.float64)
    if not np.isfinite(age).all() or (age <= 0).any():
        raise InvalidInput("T must be positive and finite", field="T")
    if not (math.isfinite(holdout) and holdout >= 0):
        raise InvalidInput(f"holdout must be >= 0, got {holdout!r}", field="holdout")
    rng = np.random.default_rng(seed)
    lam = rng.gamma(shape=r, scale=1 / alpha, size=n)
    # p below 1e-12 only happens for a << 1 and would overflow the geometric draw; it means "never leaves".
    p = np.clip(rng.beta(a, b, size=n), 1e-12, 1.0)
    dropout_after = rng.geometric(p)
    n_total = rng.poisson(lam * (age + holdout))
    n_cal = rng.binomial(n_total, age / (age + holdout))
    x = np.minimum(n_cal, dropout_after)
    safe = np.maximum(x, 1)
    recency = np.where(x > 0, age * rng.beta(safe, np.maximum(n_cal - safe + 1, 1)), 0.0)
    out = pd.DataFrame(
        {"frequency": x.astype(np.int64), "recency": recency, "T": age, "alive": n_cal < dropout_after}
    )
    if holdout > 0:
        out["frequency_holdout"] = (np.minimum(n_total, dropout_after) - x).astype(np.int64)
    return out
