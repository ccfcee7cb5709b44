"""The truth of the churn label: each customer's probability of no activity over a horizon at a cutoff."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from loyalty_core import InvalidInput
from pipelines.sources.simulator.config import DAY, NEVER, Array, Calendar

# --- the truth: P(churn label) per customer at a cutoff -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChurnTraits:
    """Per customer, what decides whether they purchase or pay a bill in a window (``truth/customers``)."""

    activity_rate: Array
    transfer_share: Array
    salary_day: Array
    salary_boost: Array
    bill_day: Array
    bill_regularity: Array
    has_bill: Array  # (n, 3) utilities, mobile, internet
    pays_taxes: Array
    churn_hazard: Array
    churn_decay: Array
    decay_days: Array
    churn_at: Array  # seconds from the start, NEVER: no churn within the history

    @property
    def n(self) -> int:
        return len(self.activity_rate)


CHURN_TRUTH_CHUNK = 4096  # customers evaluated at once: (chunk, horizon) arrays, a few MB each
_NEGLIGIBLE = 1e-12  # below this, P(no activity before a churn scenario's onset) cannot move the result


def _jitter_probabilities(regularity: Array) -> Array:
    """P(bill-day jitter = -2..2) per customer: ``clip(rint(4 (1 - regularity) Z), -2, 2)``, Z standard normal
    (as ``bill_rows`` draws it); shape (n, 5)."""
    s = 4 * (1 - regularity[:, None])
    edges = np.array([-1.5, -0.5, 0.5, 1.5])
    with np.errstate(divide="ignore"):
        cdf = ndtr(edges[None, :] / s)
    ones, zeros = np.ones((len(regularity), 1)), np.zeros((len(regularity), 1))
    return np.asarray(np.diff(np.hstack([zeros, cdf, ones]), axis=1))


class _Window:
    """One chunk of customers over the label window ``[cutoff, cutoff + horizon)`` (whole days): the
    expected organic purchases per day and where their bills and taxes may fall, so that P(no purchase and
    no bill payment) can be evaluated under any fading of their activity (``none``)."""

    def __init__(
        self, cal: Calendar, t: ChurnTraits, rows: slice, cutoff_day: int, horizon_days: int
    ) -> None:
        days = cutoff_day + np.arange(horizon_days)
        self.c, self.h = float(cutoff_day), horizon_days
        delta = (cal.dom[None, days] - t.salary_day[rows, None]) % cal.dim[None, days]
        boost = t.salary_boost[rows, None]
        salary = (1 + boost * np.exp(-delta / 3)) / (1 + boost * cal.salary_norm[None, days])
        purchases = t.activity_rate[rows] * (1 - t.transfer_share[rows])  # transfers do not count
        self.rate = purchases[:, None] * cal.weekday[None, days] * salary
        # Bills: each month the bill day moves by the jitter; each kind is paid (or not) independently.
        last = cutoff_day + horizon_days - 1
        months = np.flatnonzero(
            (cal.month_first_day <= last) & (cal.month_first_day + cal.month_dim - 1 >= cutoff_day)
        )
        jitter = np.arange(-2, 3)
        dom = np.clip(
            t.bill_day[rows, None, None] + jitter[None, None, :], 1, cal.month_dim[None, months, None]
        )
        rel = cal.month_first_day[None, months, None] + dom - 1 - cutoff_day  # (n, months, 5)
        self.bill_at = rel.reshape(len(rel), -1)
        self.bill_in = (self.bill_at >= 0) & (self.bill_at < horizon_days)
        self.bill_at = np.clip(self.bill_at, 0, horizon_days - 1)
        self.bill_p = np.repeat(
            _jitter_probabilities(t.bill_regularity[rows])[:, None, :], len(months), axis=1
        ).reshape(len(rel), -1)
        self.months = len(months)
        self.pay = t.has_bill[rows] * t.bill_regularity[rows, None]  # (n, 3)
        # Property tax: a uniform day of November (any of its 30), when the customer pays it.
        novembers = (
            cal.month_first_day[m] + np.arange(30) - cutoff_day for m in months if cal.month_number[m] == 11
        )
        self.tax_days = [d[(d >= 0) & (d < horizon_days)] for d in novembers]
        self.taxes = t.pays_taxes[rows].astype(np.float64)

    def kept(self, churn: Array, decay: Array) -> Array:
        """Mean over each day of the window of the share of activity kept: 1 until ``churn - decay``, then
        falling linearly to 0 at ``churn`` (days from the start; ``decay`` 0: it just stops), as
        ``keep_alive`` thins it, a transaction's time taken as uniform within its day."""
        edges = self.c + np.arange(self.h + 1)[None, :]
        churn = np.minimum(churn, self.c + self.h + decay + 1)[:, None]  # later changes nothing here
        d = decay[:, None]
        left = churn - edges
        with np.errstate(divide="ignore", invalid="ignore"):
            ramp = np.where(d > 0, left**2 / (2 * np.where(d > 0, d, 1.0)), 0.0)
        rest = np.where(edges >= churn, 0.0, np.where(left <= d, ramp, d / 2 + left - d))  # activity after t
        return np.asarray(rest[:, :-1] - rest[:, 1:])

    def none(self, kept: Array, rows: Array | slice = slice(None)) -> Array:
        """P(no purchase and no bill payment in the window) for ``rows`` of the chunk, activity ``kept``."""
        organic = np.exp(-(self.rate[rows] * kept).sum(axis=1))
        at = np.take_along_axis(kept, self.bill_at[rows], axis=1)
        unpaid = np.prod(1 - self.pay[rows][:, None, :] * at[:, :, None], axis=2)
        per_month = (self.bill_p[rows] * np.where(self.bill_in[rows], unpaid, 1.0)).reshape(
            len(at), self.months, 5
        )
        bills = np.prod(per_month.sum(axis=2), axis=1)
        for days in self.tax_days:
            bills = bills * (1 - self.taxes[rows] * kept[:, days].sum(axis=1) / 30)
        return np.asarray(organic * bills)


def churn_label_probability(
    cal: Calendar,
    traits: ChurnTraits,
    cutoff_day: int,
    horizon_days: int,
    *,
    hazard_factor: Array | None = None,
    factor_from: Array | None = None,
    factor_until: Array | None = None,
) -> Array:
    """P(no purchase and no bill payment in ``[cutoff, cutoff + horizon)``) per customer, from their latent
    state at the cutoff (the midnight starting day ``cutoff_day``): the true probability of the churn label.

    - Churned before the cutoff: 1 (nothing is drawn after churn).
    - Fading at the cutoff (a decaying churn whose ``decay_days`` have begun): the fading is part of the
      state (the model sees it too, in the activity before the cutoff) and it ends at the churn time
      drawn; activity falls linearly to 0 at it, as ``keep_alive`` thins it.
    - Otherwise the churn time is still to come: the hazard (``churn_hazard``, times ``hazard_factor`` over
      ``[factor_from, factor_until)``, seconds: what the campaign in force at the cutoff did to it, from
      the view or activation that changed it) decides when; a decaying churner is not fading yet, so the
      fading starts after a hazard-distributed wait counted from ``cutoff + decay_days``. Each whole day of
      the window is a scenario (onset at its middle), weighted by its probability, plus "not within the
      window".

    In each scenario organic purchases are Poisson with the day's rate (``activity_rate x (1 -
    transfer_share)``, weekday and salary-day rhythms exactly as ``organic_rows``); each bill kind is paid
    with probability ``bill_regularity`` on the bill day moved by the jitter of ``bill_rows`` (its exact
    distribution); property tax falls on a uniform day of November. Approximations: a transaction's time is
    taken as uniform within its day (for the day of churn and the fading); the hazard after the next
    campaign is the base one (the factors future campaigns will cause are random and left out); extra
    transactions that offers cause (``incremental_rows``) and the rows the ledger's fraud limits drop are
    left out: both are rare, and both only matter to customers who would otherwise not transact.
    """
    n, h = traits.n, horizon_days
    if h < 1 or cutoff_day < 0 or cutoff_day + h > cal.days:
        raise InvalidInput(
            f"the window of {h} days from day {cutoff_day} is not within the {cal.days}-day history",
            field="as_of",
        )
    c = float(cutoff_day)
    churn = np.where(traits.churn_at < NEVER, traits.churn_at / DAY, np.inf)
    gone = churn <= c
    fading = ~gone & traits.churn_decay & (churn - traits.decay_days <= c)
    # The wait before the fading (or the stop) starts: from cutoff + decay for decaying churners.
    wait_from = c + np.where(traits.churn_decay, traits.decay_days, 0.0)
    f = np.ones(n) if hazard_factor is None else np.asarray(hazard_factor, dtype=np.float64)
    a = np.full(n, np.inf) if factor_from is None else np.asarray(factor_from, dtype=np.float64) / DAY
    u = np.full(n, np.inf) if factor_until is None else np.asarray(factor_until, dtype=np.float64) / DAY

    def hazard_to(t: Array, rows: slice) -> Array:
        """Integrated hazard from the cutoff to ``t`` (days), shape (chunk, len(t[0]))."""
        span = np.clip(np.minimum(t, u[rows, None]) - np.maximum(c, a[rows, None]), 0.0, None)
        return np.asarray(traits.churn_hazard[rows, None] * ((t - c) + (f[rows, None] - 1) * span))

    out = np.ones(n)
    for lo in range(0, n, CHURN_TRUTH_CHUNK):
        rows = slice(lo, min(lo + CHURN_TRUTH_CHUNK, n))
        m = rows.stop - lo
        win = _Window(cal, traits, rows, cutoff_day, h)
        decay = np.where(traits.churn_decay[rows], traits.decay_days[rows], 0.0)
        p = np.ones(m)
        fade = np.flatnonzero(fading[rows])
        p[fade] = win.none(win.kept(churn[rows][fade], decay[fade]), fade)
        alive = np.flatnonzero(~gone[rows] & ~fading[rows])
        if len(alive):
            steps = wait_from[rows, None] + np.arange(h + 1)[None, :]
            survive = np.exp(-(hazard_to(steps, rows) - hazard_to(wait_from[rows, None], rows)))
            p[alive] = survive[alive, h] * win.none(np.ones((len(alive), h)), alive)  # not in the window
            before = np.exp(-np.cumsum(win.rate, axis=1))  # P(no organic purchase in the first k + 1 days)
            todo = alive
            for k in range(h):
                if k:  # a customer sure to have bought before this onset gains nothing from later ones
                    todo = todo[before[todo, k - 1] > _NEGLIGIBLE]
                if not len(todo):
                    break
                kept = win.kept(np.full(len(todo), c + k + 0.5) + decay[todo], decay[todo])
                p[todo] += (survive[todo, k] - survive[todo, k + 1]) * win.none(kept, todo)
        out[rows] = p
    return out
