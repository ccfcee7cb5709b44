"""Campaigns: one offer, many customers, a budget on expected cost and/or a head count."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.policy.value import SOURCE_PROPENSITY, SOURCE_UPLIFT, expected_value


def allocate_campaign(
    customer_ids: Sequence[str] | pd.Index,
    p_complete: np.ndarray,
    *,
    value: float,
    cost: float,
    uplift: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    budget: float | None = None,
    limit: int | None = None,
    budget_cost: float | None = None,
    rank_by: Literal["value", "value_per_cost"] = "value",
) -> pd.DataFrame:
    """Customers to send one offer to, best first, within a budget on expected cost and/or a head count.

    Eligible customers with positive expected value are ranked by it (``rank_by="value_per_cost"`` ranks by
    value per unit of expected cost, the better order when the budget binds and costs differ a lot) and taken
    in that order while the cumulative expected cost ``p_complete * budget_cost`` stays within ``budget``;
    the first customer who would overspend ends the list (so the list is a prefix of the ranking and the
    budget is never exceeded). ``budget_cost`` is what one completion costs in the budget's unit: the offer's
    money ``cost`` by default, its bonus points for a points budget.

    Returns ``rank, customer_id, p_complete, expected_value, expected_cost, cumulative_cost, source``.
    """
    ids = pd.Index(customer_ids)
    p = np.asarray(p_complete, dtype=np.float64)
    if p.shape != (len(ids),):
        raise InvalidInput("p_complete must have one entry per customer", field="p_complete")
    if budget is not None and budget < 0:
        raise InvalidInput("budget must be >= 0", field="budget")
    if limit is not None and limit < 0:
        raise InvalidInput("limit must be >= 0", field="limit")
    u = None if uplift is None else np.asarray(uplift, dtype=np.float64)
    ev, has = expected_value(p, float(value), float(cost), u)
    unit = float(cost if budget_cost is None else budget_cost)
    if unit < 0:
        raise InvalidInput("budget_cost must be >= 0", field="budget_cost")
    exp_cost = p * unit
    keep = ev > 0
    if eligible is not None:
        keep &= np.asarray(eligible, dtype=bool)
    idx = np.flatnonzero(keep)
    if rank_by == "value":
        key = ev[idx]
    elif rank_by == "value_per_cost":
        with np.errstate(divide="ignore", invalid="ignore"):
            key = np.where(exp_cost[idx] > 0, ev[idx] / exp_cost[idx], np.inf)
    else:
        raise InvalidInput("rank_by must be 'value' or 'value_per_cost'", field="rank_by")
    # Best first; ties by the higher EV, then by the caller's order.
    idx = idx[np.lexsort((-ev[idx], -key))]
    cum = np.cumsum(exp_cost[idx])
    n = len(idx)
    if budget is not None:
        n = int(np.searchsorted(cum, budget * (1 + 1e-12), side="right"))
    if limit is not None:
        n = min(n, limit)
    idx = idx[:n]
    return pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "customer_id": ids[idx].astype(str),
            "p_complete": p[idx],
            "expected_value": ev[idx],
            "expected_cost": exp_cost[idx],
            "cumulative_cost": cum[:n],
            "source": np.where(has[idx], SOURCE_UPLIFT, SOURCE_PROPENSITY),
        }
    )
