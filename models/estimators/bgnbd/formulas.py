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

import math
from collections.abc import Mapping
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from models.estimators.bgnbd.checks import Floats, Theta, check_history, check_horizon, check_params

SINGULAR_GAP: Final = 1e-7


def loglik_terms(
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
    theta = check_params(params)
    x, tx, age = check_history(frequency, recency, T)
    return loglik_terms(theta, x, tx, age)[0]


def loglik_and_gradient(
    theta: Theta, x: Floats, tx: Floats, age: Floats, weight: Floats
) -> tuple[float, Floats]:
    """Weighted sum of ln L and its gradient with respect to (r, alpha, a, b)."""
    r, alpha, a, b = theta
    ll, a3, a4, has_repeat, bx1 = loglik_terms(theta, x, tx, age)
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
    r, alpha, a, b = check_params(params)
    x, tx, age = check_history(frequency, recency, T)
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
    r, alpha, a, b = check_params(params)
    horizon = check_horizon(t)
    x, tx, age = check_history(frequency, recency, T)
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
    r, alpha, a, b = check_params(params)
    horizon = check_horizon(t)
    x, tx, age = check_history(frequency, recency, T)
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    alive = _p_alive(r, alpha, a, b, x, tx, age)
    expected: Floats = alive * _expected_if_alive(r, alpha, a, b, horizon, x, age)
    quiet: Floats = 1 - alive * (1 - np.exp(-(r + x) * np.log1p(horizon / (alpha + age))))
    return alive, expected, quiet


def expected_purchases_new_customer(params: Mapping[str, float], t: ArrayLike) -> Floats:
    """E[X(t)]: repeat purchases in the first t units of a new customer's life (paper eq. 7)."""
    r, alpha, a, b = check_params(params)
    horizon = check_horizon(t)
    zero = np.zeros_like(horizon)
    return _expected_if_alive(r, alpha, a, b, horizon, zero, zero)


def probability_no_purchase(
    params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Floats:
    """P(no purchase in (T, T+t] | x, t_x, T): derived in the module docstring."""
    r, alpha, a, b = check_params(params)
    horizon = check_horizon(t)
    x, tx, age = check_history(frequency, recency, T)
    horizon, x, tx, age = np.broadcast_arrays(horizon, x, tx, age)
    quiet_if_alive = np.exp(-(r + x) * np.log1p(horizon / (alpha + age)))
    quiet: Floats = 1 - _p_alive(r, alpha, a, b, x, tx, age) * (1 - quiet_if_alive)
    return quiet
