"""Customer histories drawn from the BG/NBD story itself, for tests and for sizing experiments."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from loyalty_core import InvalidInput
from models.estimators.bgnbd.checks import as_floats, check_params


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
    r, alpha, a, b = check_params(params)
    if int(n_customers) < 1:
        raise InvalidInput(f"n_customers must be >= 1, got {n_customers!r}", field="n_customers")
    n = int(n_customers)
    age = np.broadcast_to(as_floats(T, "T"), (n,)).astype(np.float64)
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
