"""Transactions a customer makes: organic, bills and those an offer caused, within the ledger's limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loyalty_core import TXN_TYPES, FraudLimits
from pipelines.sources.simulator.campaigns import DecisionLog, offer_category_indices
from pipelines.sources.simulator.config import BILL_JITTER_DAYS, DAY, NEVER, Array, Calendar
from pipelines.sources.simulator.population import Population, draw_index
from pipelines.sources.simulator.world import (
    BILL,
    BILL_KINDS,
    CATALOGUE,
    CATEGORIES,
    CATEGORY_NAMES,
    HOURS_BILL,
    HOURS_PURCHASE,
    HOURS_TRANSFER,
    MAX_AMOUNT_RUB,
    P2P,
    PURCHASE,
    PURCHASE_CATEGORIES,
    REGIONS,
    TAXES,
    TRANSFER,
    WINTER_HEATING,
    channel_table,
)

# --- transactions ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    """Transactions as columns: customer, time (s from start), type, category, channel, region, cents, and the
    decision whose incremental transaction this is (-1: organic)."""

    c: Array
    t: Array
    type: Array
    cat: Array
    ch: Array
    reg: Array
    cents: Array
    inc: Array

    def take(self, idx: Array) -> Rows:
        return Rows(*(getattr(self, f)[idx] for f in Rows.__slots__))

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Rows.__slots__))

    def __len__(self) -> int:
        return len(self.c)


_LN_MEDIAN = np.log([c.median for c in CATEGORIES])
_SIGMA = np.array([c.sigma for c in CATEGORIES])
_ELASTICITY = np.array([c.income_elasticity for c in CATEGORIES])
_MINIMUM = np.array([c.minimum for c in CATEGORIES])
_AWAY = np.array([c.away for c in CATEGORIES])
_CHANNEL_CUM = channel_table()
_REGION_CUM = np.cumsum([r.weight for r in REGIONS])
_PURCHASE_CATS = np.array(PURCHASE_CATEGORIES)
_TYPE_OF = np.array([c.txn_type for c in CATEGORIES])


def _hours(rng: np.random.Generator, weights: Array, n: int) -> Array:
    cum = np.cumsum(weights)
    return np.asarray(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"))


def _utc_seconds(local: Array, tz: Array) -> Array:
    """Local second-of-day to UTC second-of-day, kept within the same UTC day."""
    return np.asarray((local - tz * 3600) % DAY)


def _amounts(pop: Population, c: Array, cat: Array, rng: np.random.Generator) -> Array:
    mu = _LN_MEDIAN[cat] + _ELASTICITY[cat] * pop.log_income_ratio[c]
    rub = np.clip(np.exp(mu + _SIGMA[cat] * rng.standard_normal(len(c))), _MINIMUM[cat], MAX_AMOUNT_RUB)
    cents = np.rint(rub * 100).astype(np.int64)
    return np.asarray(
        np.where(cat == P2P, cents // 10_000 * 10_000, cents)
    )  # transfers: whole hundreds of RUB


def _channels(cat: Array, pref: Array, rng: np.random.Generator) -> Array:
    return draw_index(rng, _CHANNEL_CUM[cat, pref])


def _regions(home: Array, cat: Array, rng: np.random.Generator) -> Array:
    away = rng.random(len(home)) < _AWAY[cat]
    other = np.searchsorted(_REGION_CUM, rng.random(len(home)) * _REGION_CUM[-1], side="right")
    return np.where(away, other, home)


def organic_rows(
    cal: Calendar, pop: Population, churn_at: Array, lo: int, hi: int, rng: np.random.Generator
) -> Rows:
    """Purchases and transfers: Poisson counts per customer-day with weekday and salary-day rhythms."""
    d = np.arange(cal.days)
    first = pop.live_from[lo:hi] // DAY
    last = (np.minimum(churn_at[lo:hi], cal.end) - 1) // DAY
    alive = (d[None, :] >= first[:, None]) & (d[None, :] <= last[:, None])
    delta = (cal.dom[None, :] - pop.salary_day[lo:hi, None]) % cal.dim[None, :]
    boost = pop.salary_boost[lo:hi, None]
    salary = (1 + boost * np.exp(-delta / 3)) / (1 + boost * cal.salary_norm[None, :])
    rate = pop.activity_rate[lo:hi, None] * cal.weekday[None, :] * salary * alive
    counts = rng.poisson(rate)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    c = lo + cell // cal.days
    day = cell % cal.days
    n = len(c)
    transfer = rng.random(n) < pop.transfer_share[c]
    taste_cum = np.cumsum(pop.taste[lo:hi], axis=1)
    cat = np.where(transfer, P2P, _PURCHASE_CATS[draw_index(rng, taste_cum[c - lo])])
    hour = np.where(transfer, _hours(rng, HOURS_TRANSFER, n), _hours(rng, HOURS_PURCHASE, n))
    local = hour * 3600 + rng.integers(0, 3600, n)
    return Rows(
        c=c,
        t=day * DAY + _utc_seconds(local, pop.tz[c]),
        type=np.where(transfer, TRANSFER, PURCHASE),
        cat=cat,
        ch=_channels(cat, pop.pref[c], rng),
        reg=_regions(pop.region[c], cat, rng),
        cents=_amounts(pop, c, cat, rng),
        inc=np.full(n, -1, dtype=np.int64),
    )


def bill_rows(cal: Calendar, pop: Population, lo: int, hi: int, rng: np.random.Generator) -> Rows:
    """Monthly bills paid together on the bill day (a few days after salary), and November's property tax."""
    size, months = hi - lo, len(cal.month_first_day)
    regularity = pop.bill_regularity[lo:hi]
    # At most a couple of days early or late: a 28-day window then almost never holds two bill days, and
    # holds one with probability 28 / 30.44 over the month's phase (the truth's W / 30.44).
    wobble = rng.standard_normal((size, months)) * (1 - regularity)[:, None] * 4
    jitter = np.clip(np.rint(wobble), -BILL_JITTER_DAYS, BILL_JITTER_DAYS).astype(np.int64)
    dom = np.clip(pop.bill_day[lo:hi, None] + jitter, 1, cal.month_dim[None, :])
    day = cal.month_first_day[None, :] + dom - 1
    inside = (day >= 0) & (day < cal.days)
    session = _utc_seconds(
        _hours(rng, HOURS_BILL, size * months).reshape(size, months) * 3600
        + rng.integers(0, 3600, (size, months)),
        pop.tz[lo:hi, None],
    )
    pays = pop.has_bill[lo:hi, None, :] & (rng.random((size, months, 3)) < regularity[:, None, None])
    ci, mi, ki = np.nonzero(pays & inside[:, :, None])
    c = lo + ci
    winter = np.isin(cal.month_number[mi], (11, 12, 1, 2, 3)) & (ki == 0)
    noise = np.where(ki == 0, np.exp(0.08 * rng.standard_normal(len(c))), 1.0)
    rub = pop.bill_amount[c, ki] * np.where(winter, WINTER_HEATING, 1.0) * noise
    t_bill = day[ci, mi] * DAY + session[ci, mi] + ki * rng.integers(20, 180, len(c))
    # Property tax: once, some November day before the 1 December deadline.
    tax_day = cal.month_first_day[None, :] + rng.integers(0, 30, (size, months))
    due = (
        pop.pays_taxes[lo:hi, None]
        & (cal.month_number[None, :] == 11)
        & (tax_day >= 0)
        & (tax_day < cal.days)
    )
    tc, tm = np.nonzero(due)
    tax_c = lo + tc
    cat = np.concatenate([np.array(BILL_KINDS)[ki], np.full(len(tc), TAXES)])
    cents = np.rint(np.concatenate([rub, np.maximum(pop.tax_amount[tax_c], 100.0)]) * 100).astype(np.int64)
    cc = np.concatenate([c, tax_c])
    t = np.concatenate([t_bill, tax_day[tc, tm] * DAY + session[tc, tm]])
    return Rows(
        c=cc,
        t=t,
        type=np.full(len(cc), BILL),
        cat=cat,
        ch=_channels(cat, pop.pref[cc], rng),
        reg=pop.region[cc],
        cents=np.minimum(cents, int(MAX_AMOUNT_RUB * 100)),
        inc=np.full(len(cc), -1, dtype=np.int64),
    )


def incremental_rows(pop: Population, log: DecisionLog, rng: np.random.Generator) -> Rows:
    """The extra qualifying transaction of each responsive customer who activated an offer."""
    parts: list[Rows] = []
    for j, offer in enumerate(CATALOGUE):
        dec = np.flatnonzero((log.incremental >= 0) & (log.offer == j))
        if not len(dec):
            continue
        c = log.customer[dec]
        cats = np.array(offer_category_indices(offer))
        purchase = np.isin(cats, _PURCHASE_CATS)
        if purchase.all():
            cols = np.array([PURCHASE_CATEGORIES.index(k) for k in cats])
            cum = np.cumsum(pop.taste[c][:, cols] + 1e-12, axis=1)
        else:
            cum = np.cumsum(np.broadcast_to(1.0 * ~purchase, (len(c), len(cats))), axis=1)
        cat = cats[draw_index(rng, cum)]
        threshold = offer.completes_at()
        if threshold is not None:
            rub = float(threshold) * (1 + rng.exponential(0.2, len(c)))
            cents = np.minimum(np.ceil(rub * 100).astype(np.int64), int(MAX_AMOUNT_RUB * 100))
        else:
            cents = _amounts(pop, c, cat, rng)
        parts.append(
            Rows(
                c=c,
                t=log.incremental[dec],
                type=_TYPE_OF[cat],
                cat=cat,
                ch=_channels(cat, pop.pref[c], rng),
                reg=pop.region[c],
                cents=cents,
                inc=dec,
            )
        )
    return Rows.concat(parts) if parts else _empty_rows()


def _empty_rows() -> Rows:
    return Rows(*(np.zeros(0, dtype=np.int64) for _ in Rows.__slots__))


def keep_alive(rows: Rows, pop: Population, churn_at: Array, end: int, rng: np.random.Generator) -> Rows:
    """Thin organic rows to the customer's life: joined, not churned, and fading before a decaying churn."""
    churn = churn_at[rows.c]
    keep = (rows.t >= pop.live_from[rows.c]) & (rows.t < np.minimum(churn, end))
    fading = pop.churn_decay[rows.c] & (churn < NEVER)
    left = (churn - rows.t) / (pop.decay_days[rows.c] * DAY)
    keep &= ~fading | (left >= 1) | (rng.random(len(rows)) < left)
    return rows.take(np.flatnonzero(keep))


def _group_starts(c: Array) -> Array:
    """For rows sorted by customer: the index of each row's customer's first row."""
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    return np.maximum.accumulate(np.where(first, np.arange(len(c)), 0))


def within_ledger_limits(rows: Rows, limits: FraudLimits) -> Rows:
    """Rows (sorted by customer, time) that the ledger's fraud checks would all let through.

    Velocity: a customer's (velocity_max + 1)-th transaction within the window is dropped. Unusual amount:
    an amount above ``factor x`` the mean of the customer's earlier transactions (after ``min_history`` of
    them) is lowered to 80 % of that bound; lowering one changes later means, hence the loop.
    """
    m, window = limits.velocity_max, int(limits.velocity_window.total_seconds())
    while len(rows) > m:
        crowded = np.zeros(len(rows), dtype=bool)
        crowded[m:] = (rows.c[m:] == rows.c[:-m]) & (rows.t[m:] - rows.t[:-m] < window)
        if not crowded.any():
            break
        rows = rows.take(np.flatnonzero(~crowded))
    factor, history = int(limits.unusual_amount_factor), limits.unusual_min_history
    cents = rows.cents.copy()
    starts = _group_starts(rows.c)
    before = np.arange(len(rows)) - starts
    for _ in range(100):
        total = np.cumsum(cents)
        prior = total - cents - np.where(starts > 0, total[starts - 1], 0)
        unusual = (before >= max(history, 1)) & (cents * before > factor * prior)
        if not unusual.any():
            return Rows(rows.c, rows.t, rows.type, rows.cat, rows.ch, rows.reg, cents, rows.inc)
        cents[unusual] = np.maximum(prior[unusual] * factor * 4 // (5 * before[unusual]), 100)
    raise RuntimeError("unusual-amount adjustment did not settle")  # a bug: each pass only lowers amounts


def completions(rows: Rows, log: DecisionLog, decisions: Array, lo: int) -> tuple[Array, Array]:
    """(decision, completion time) for activations whose offer a transaction completes, as the ledger decides.

    The ledger completes an activation with the first posted transaction in ``[activated_at, activated_at +
    duration)`` that the offer ``applies`` to (``OfferEffect.applies``: txn_types and categories), with
    ``amount >= threshold`` for bonus points and cashback; informational offers never complete. ``rows`` is
    sorted by (customer, time) in file order, so "first" is the same transaction the ledger will see first.
    """
    key = ((rows.c - lo).astype(np.int64) << 32) | rows.t
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    found_dec: list[Array] = []
    found_at: list[Array] = []
    for j, offer in enumerate(CATALOGUE):
        dec = decisions[log.offer[decisions] == j]
        if offer.kind == "informational" or not len(dec):
            continue
        match = np.ones(n, dtype=bool)
        if offer.txn_types is not None:
            match &= np.isin(rows.type, [TXN_TYPES.index(x) for x in offer.txn_types])
        if offer.categories is not None:
            match &= np.isin(rows.cat, [CATEGORY_NAMES.index(x) for x in offer.categories])
        threshold = offer.completes_at()
        if threshold is not None:
            match &= rows.cents >= int(threshold * 100)
        upcoming = np.minimum.accumulate(np.where(match, np.arange(n), n)[::-1])[::-1]
        upcoming = np.append(upcoming, n)
        c, at = log.customer[dec], log.activated[dec]
        first = upcoming[np.searchsorted(key, ((c - lo).astype(np.int64) << 32) | at, side="left")]
        safe = np.minimum(first, n - 1)
        ok = (first < n) & (rows.c[safe] == c) & (rows.t[safe] < at + offer.duration_days * DAY)
        found_dec.append(dec[ok])
        found_at.append(rows.t[safe][ok])
    if not found_dec:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(found_dec), np.concatenate(found_at)
