"""Expected incremental value of an offer to a customer, in RUB, for many customers at once.

The bank pays ``cost`` on every completion and earns ``value`` only on the completions the offer caused::

    EV = uplift(x, a) * value_a - P(complete | treated)(x, a) * cost_a

Without an uplift estimate we fall back to ``P(complete | treated) * (value_a - cost_a)``, which credits the
offer with completions that would have happened anyway, so it overstates offers popular with "sure things";
every EV carries a flag saying which formula produced it (``SOURCE_UPLIFT`` or ``SOURCE_PROPENSITY``).
"""

from __future__ import annotations

import numpy as np

from loyalty_core import InvalidInput

SOURCE_UPLIFT = "uplift"
SOURCE_PROPENSITY = "propensity"


def expected_value(
    p_treated: np.ndarray,
    value: np.ndarray | float,
    cost: np.ndarray | float,
    uplift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected incremental value (RUB) and whether the uplift formula produced it (else the fallback).

    ``p_treated`` and ``uplift`` are ``(..., offers)``; ``value`` and ``cost`` are per offer and broadcast.
    ``uplift`` NaN (or None) means no estimate for that pair: the propensity fallback is used there.
    """
    p = np.asarray(p_treated, dtype=np.float64)
    # min/max instead of elementwise masks: this runs on every request, and NaN fails both comparisons.
    if p.size and not (p.min() >= 0.0 and p.max() <= 1.0):
        raise InvalidInput("P(complete | treated) must be probabilities in [0, 1]", field="propensity")
    if uplift is None:
        return p * (value - cost), np.zeros(p.shape, dtype=bool)
    u = np.asarray(uplift, dtype=np.float64)
    if u.shape != p.shape:
        raise InvalidInput("uplift must have the shape of the propensities", field="uplift")
    has = ~np.isnan(u)
    if (np.abs(u) > 1.0).any():  # NaN compares False: missing estimates pass
        raise InvalidInput("uplift must be a difference of probabilities, in [-1, 1]", field="uplift")
    # NaN uplift makes NaN in the first branch, which np.where does not pick.
    ev = np.where(has, u * value - p * cost, p * (value - cost))
    return ev, has
