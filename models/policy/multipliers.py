"""Bonus multipliers on a customer's earnings: who gets 1.5x, 2x or 3x, within a budget of extra points.

The batch (``allocate_multipliers``) and the request path (``multiplier_for``, and the service's vectorised
twin built on ``multiplier_inputs`` and ``hull_steps``) share the same hull arithmetic, so an online grant
never outspends the batch plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loyalty_core import InvalidInput


@dataclass(frozen=True, slots=True)
class MultiplierPolicy:
    """The economics of a bonus multiplier on a customer's earnings for one period.

    A customer expected to earn ``b`` points in the period at 1x earns ``(m - 1) * b`` extra points at
    multiplier ``m`` (``b`` is already an expectation: a customer likely to leave earns little, so costs
    little); each extra point costs the bank ``point_value`` RUB (what a redeemed point costs, times the
    share of points ever redeemed). The multiplier lowers the customer's churn probability ``c`` by the
    relative amount ``effect[m]``, so it keeps ``c * effect[m] * V`` RUB of the customer's value ``V`` (e.g.
    their expected margin over a year, from the CLV model). Hence the money is best spent on customers who
    are both likely to leave and worth keeping, per point they would earn.

    ``effect`` is an assumption, the same for every customer, until a multiplier experiment measures it
    (defaults: 0, 8, 14, 22 % of the churn risk averted at 1, 1.5, 2, 3x; concave, each step buys less).
    """

    levels: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    effect: tuple[float, ...] = (0.0, 0.08, 0.14, 0.22)
    point_value: float = 1.0  # RUB per point

    def __post_init__(self) -> None:
        lv = np.asarray(self.levels, dtype=np.float64)
        if len(lv) < 1 or lv[0] != 1.0 or (np.diff(lv) <= 0).any():
            raise InvalidInput("multiplier levels must start at 1 and increase", field="levels")
        if len(self.effect) != len(self.levels):
            raise InvalidInput("one retention effect per multiplier level", field="effect")
        if not all(0.0 <= e <= 1.0 for e in self.effect):
            raise InvalidInput("retention effects are fractions of the churn risk, in [0, 1]", field="effect")
        if self.point_value < 0:
            raise InvalidInput("point_value must be >= 0", field="point_value")


@dataclass(frozen=True, slots=True)
class MultiplierAllocation:
    multiplier: np.ndarray  # (n,) one of the policy's levels
    extra_points: np.ndarray  # (n,) expected extra points at that level
    retained_value: np.ndarray  # (n,) expected RUB of customer value kept by it
    threshold: float  # retained RUB per extra point a step must beat (the budget's shadow price)
    spent: float  # expected extra points in all
    budget: float | None


def multiplier_inputs(
    policy: MultiplierPolicy, churn: np.ndarray, value: np.ndarray, base_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(RUB kept, extra points) of every customer at every level: validated once here so that the batch, the
    online rule and the service's vectorised twin all price the levels the same way."""
    c = np.asarray(churn, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    b = np.asarray(base_points, dtype=np.float64)
    if not (c.shape == v.shape == b.shape and c.ndim == 1):
        raise InvalidInput("churn, value and base_points must be 1-d arrays of one length", field="churn")
    if not ((c >= 0) & (c <= 1)).all():
        raise InvalidInput("churn must be probabilities in [0, 1]", field="churn")
    if not (np.isfinite(v).all() and np.isfinite(b).all()) or (b < 0).any():
        raise InvalidInput("value must be finite and base_points finite and >= 0", field="base_points")
    levels = np.asarray(policy.levels)
    effect = np.asarray(policy.effect)
    gain = (c * np.maximum(v, 0.0))[:, None] * effect[None, :]  # RUB kept at each level
    extra = b[:, None] * (levels - 1.0)[None, :]  # extra points at each level
    return gain, extra


def hull_steps(gain: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Steps along each customer's upper concave hull of (extra points, RUB kept), from level 0 upwards.

    Each step has a lower ratio than the previous one of the same customer, so any threshold on the ratio
    (and any prefix of all steps sorted by ratio) takes a prefix of each customer's steps.
    Returns (customer, step number, to-level, d_extra, ratio) arrays.
    """
    n, levels = gain.shape
    rows = np.arange(n)
    cur = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    out: list[tuple[np.ndarray, ...]] = []
    later = np.arange(levels)[None, :]
    for step in range(levels - 1):
        dg = gain - gain[rows, cur][:, None]
        dk = extra - extra[rows, cur][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dk > 0, dg / dk, np.inf)
        slope = np.where((later > cur[:, None]) & (dg > 0), slope, -np.inf)
        nxt = np.argmax(slope, axis=1)  # nearest level on ties: finer steps fit budgets better
        best = slope[rows, nxt]
        ok = alive & (best > -np.inf)
        if not ok.any():
            break
        who = rows[ok]
        out.append((who, np.full(len(who), step), nxt[ok], dk[ok, nxt[ok]], best[ok]))
        cur = np.where(ok, nxt, cur)
        alive = ok
    if not out:
        empty_i = np.empty(0, dtype=np.int64)
        return empty_i, empty_i, empty_i, np.empty(0), np.empty(0)
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def allocate_multipliers(
    churn: np.ndarray,
    value: np.ndarray,
    base_points: np.ndarray,
    *,
    policy: MultiplierPolicy = MultiplierPolicy(),
    budget: float | None = None,
) -> MultiplierAllocation:
    """Multipliers for a batch of customers, spending at most ``budget`` expected extra points.

    Greedy on marginal economics: every upgrade step of every customer (1 -> 1.5 -> 2 -> 3, along the concave
    hull so dominated levels are skipped) is worth ``ratio`` = RUB of customer value kept per extra point.
    Steps are taken best ratio first while the expected extra points fit the budget and the ratio beats
    ``point_value`` (a step that keeps less than it costs is never taken, budget or not). Taking hull steps
    by decreasing ratio is the exact solution of the problem's linear relaxation (a multiple-choice
    knapsack), so the allocation is optimal for the points it spends and at most one step short of the best
    use of the whole budget.

    The returned ``threshold`` is the budget's shadow price: the ratio of the first step the budget refused
    (``point_value`` when the budget did not bind). ``multiplier_for`` applies it to one customer at request
    time, so online choices follow the batch's budget as long as the customers look like the batch.
    """
    gain, extra = multiplier_inputs(policy, churn, value, base_points)
    n = gain.shape[0]
    who, step, to, dk, ratio = hull_steps(gain, extra)
    profitable = ratio > policy.point_value
    who, step, to, dk, ratio = (
        who[profitable],
        step[profitable],
        to[profitable],
        dk[profitable],
        ratio[profitable],
    )
    order = np.lexsort((step, who, -ratio))  # best ratio first; a customer's steps in order on ties
    who, to, dk, ratio = who[order], to[order], dk[order], ratio[order]
    cum = np.cumsum(dk)
    take = len(cum)
    threshold = policy.point_value
    if budget is not None:
        if budget < 0:
            raise InvalidInput("budget must be >= 0", field="budget")
        take = int(np.searchsorted(cum, budget * (1 + 1e-12), side="right"))
        if take < len(cum):
            threshold = float(ratio[take])
    level = np.zeros(n, dtype=np.int64)
    np.maximum.at(level, who[:take], to[:take])
    rows = np.arange(n)
    levels = np.asarray(policy.levels)
    chosen_extra = extra[rows, level]
    return MultiplierAllocation(
        multiplier=levels[level],
        extra_points=chosen_extra,
        retained_value=gain[rows, level],
        threshold=threshold,
        spent=float(chosen_extra.sum()),
        budget=budget,
    )


def multiplier_for(
    churn: float,
    value: float,
    base_points: float,
    *,
    threshold: float,
    policy: MultiplierPolicy = MultiplierPolicy(),
) -> float:
    """One customer's multiplier at request time: climb the hull while a step's ratio beats ``threshold``.

    ``threshold`` comes from the last ``allocate_multipliers`` run (its shadow price), never below
    ``point_value``. For a customer of that batch this gives at most the batch's level (equal unless the
    customer's step tied with the budget's last one), so online grants do not outspend the batch plan.
    """
    gain, extra = multiplier_inputs(
        policy, np.asarray([churn]), np.asarray([value]), np.asarray([base_points])
    )
    _, _, to, _, ratio = hull_steps(gain, extra)
    bar = max(threshold, policy.point_value)
    level = 0
    for t, r in zip(to, ratio, strict=True):  # in step order, ratios decreasing
        if r <= bar:
            break
        level = int(t)
    return float(policy.levels[level])
