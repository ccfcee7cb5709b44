"""Customers of the simulated bank: their attributes and latent traits, drawn vectorised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loyalty_core import OFFER_KINDS
from pipelines.sources.simulator.config import (
    DAY,
    SEGMENT_ACTIVATION,
    SEGMENT_ACTIVITY,
    SEGMENT_HAZARD,
    SEGMENT_SHARES,
    SEGMENT_VIEW_BETA,
    Array,
    SimConfig,
)
from pipelines.sources.simulator.world import (
    BILL_KINDS,
    CATEGORIES,
    CHANNEL_BY_AGE,
    FUEL,
    INCOME_BAND_EDGES,
    INTERNET_PLANS,
    MEDIAN_INCOME,
    MOBILE_PLANS,
    PURCHASE_CATEGORIES,
    REGIONS,
    SEGMENTS,
    TAXES,
    VIEW_BY_CHANNEL,
)

# --- customers -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Population:
    region: Array
    tz: Array  # UTC offset, hours
    birth_year: Array
    female: Array
    income: Array  # monthly RUB
    log_income_ratio: Array  # ln(income / MEDIAN_INCOME)
    band: Array
    pref: Array  # preferred channel
    joined_day: Array  # days from the start (negative: joined before the history begins)
    live_from: Array  # seconds from the start of the first moment they can transact
    segment: Array
    activity_rate: Array  # organic purchases and transfers per day
    transfer_share: Array
    taste: Array  # (n, purchase categories), rows sum to 1
    salary_day: Array
    salary_boost: Array  # spending on salary day is (1 + boost) x the month's trough, decaying over ~3 days
    bill_day: Array
    has_bill: Array  # (n, 3) utilities, mobile, internet
    bill_regularity: Array  # chance each bill is paid in a given month
    bill_amount: Array  # (n, 3) RUB
    pays_taxes: Array
    tax_amount: Array
    churn_hazard: Array  # per day
    churn_decay: Array  # activity fades before churn (else it just stops)
    decay_days: Array
    churn_budget: Array  # Exp(1): churn comes when the integrated hazard reaches it
    view_prob: Array
    activation_prob: Array  # (n, kinds): P(activate | viewed)
    resp: Array  # (n, kinds)
    multiplier_sensitivity: Array

    @property
    def n(self) -> int:
        return len(self.region)


def draw_index(rng: np.random.Generator, cum: Array) -> Array:
    """One index per row of a cumulative-weights matrix (inverse CDF); zero-width entries are never chosen."""
    u = rng.random(len(cum)) * cum[:, -1]
    return np.asarray((u[:, None] < cum).argmax(axis=1))


def draw_population(config: SimConfig, rng: np.random.Generator) -> Population:
    n = config.customers
    weights = np.array([r.weight for r in REGIONS])
    region = rng.choice(len(REGIONS), size=n, p=weights / weights.sum())
    age = np.clip(np.rint(rng.normal(41, 14, n)), 18, 85).astype(np.int64)
    female = rng.random(n) < 0.54
    age_curve = np.select([age < 25, age < 35, age < 50, age < 63], [-0.3, -0.05, 0.1, 0.0], -0.35)
    income_factor = np.array([r.income_factor for r in REGIONS])[region]
    raw = np.exp(np.log(MEDIAN_INCOME * income_factor) + age_curve + rng.normal(0, 0.55, n))
    income = np.maximum(np.rint(raw / 100) * 100, 12_000.0)
    ratio = np.log(income / MEDIAN_INCOME)
    pref = draw_index(rng, np.cumsum(CHANNEL_BY_AGE, axis=1)[np.searchsorted([30, 55], age, side="right")])
    joins_now = rng.random(n) < 0.12
    tenure = np.minimum(rng.exponential(1600, n), (age - 18) * 365.25) + 1
    joined_day = np.where(joins_now, rng.integers(0, config.days, n), -np.ceil(tenure)).astype(np.int64)
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES)
    life_stage = np.select([age < 35, age >= 63], [1.15, 0.75], 1.0)
    activity = np.exp(rng.normal(np.log(0.42), 0.5, n)) * np.exp(0.12 * ratio) * life_stage
    activity = np.clip(activity * SEGMENT_ACTIVITY[segment], 0.02, 8.0)
    shares = np.array([CATEGORIES[k].share for k in PURCHASE_CATEGORIES])
    taste = rng.dirichlet(6 * shares, n)
    band = np.searchsorted(INCOME_BAND_EDGES, income, side="right")
    no_car = rng.random(n) >= np.array([0.3, 0.55, 0.7, 0.8])[band]
    taste[no_car, PURCHASE_CATEGORIES.index(FUEL)] = 0.0
    taste /= taste.sum(axis=1, keepdims=True)
    salary_day = np.where(
        age >= 63,
        rng.integers(1, 26, n),
        rng.choice([5, 10, 15, 20, 25], size=n, p=[0.2, 0.25, 0.15, 0.15, 0.25]),
    )
    utilities = CATEGORIES[BILL_KINDS[0]]
    bill_amount = np.stack(
        [
            np.exp(
                np.log(utilities.median)
                + utilities.income_elasticity * ratio
                + utilities.sigma * rng.standard_normal(n)
            ),
            rng.choice(MOBILE_PLANS, n),
            rng.choice(INTERNET_PLANS, n),
        ],
        axis=1,
    )
    taxes = CATEGORIES[TAXES]
    persuadable = segment == 0
    resp = np.where(
        persuadable[:, None],
        rng.beta(2.5, 2.0, (n, 4)) * (rng.random((n, 4)) >= 0.25),  # a quarter ignore a given kind
        np.where((segment == 2)[:, None], rng.beta(1.0, 40.0, (n, 4)), 0.0),
    )
    activation = np.where(
        persuadable[:, None], 0.35 + 0.6 * resp, np.nan_to_num(SEGMENT_ACTIVATION[segment])[:, None]
    )
    activation[:, OFFER_KINDS.index("informational")] = 0.0  # nothing to activate
    view_beta = SEGMENT_VIEW_BETA[segment]
    return Population(
        region=region,
        tz=np.array([r.utc_offset for r in REGIONS])[region],
        birth_year=config.start.year - age,
        female=female,
        income=income,
        log_income_ratio=ratio,
        band=band,
        pref=pref,
        joined_day=joined_day,
        live_from=np.maximum(joined_day, 0) * DAY,
        segment=segment,
        activity_rate=activity,
        transfer_share=rng.beta(2.0, 9.0, n),
        taste=taste,
        salary_day=salary_day,
        salary_boost=rng.uniform(0.2, 1.0, n),
        bill_day=(salary_day + rng.integers(0, 5, n) - 1) % 28 + 1,
        has_bill=rng.random((n, 3)) < np.array([0.8, 0.9, 0.65]),
        bill_regularity=rng.beta(5.0, 1.3, n),
        bill_amount=bill_amount,
        pays_taxes=rng.random(n) < 0.55,
        tax_amount=np.exp(
            np.log(taxes.median) + taxes.income_elasticity * ratio + taxes.sigma * rng.standard_normal(n)
        ),
        churn_hazard=np.clip(
            np.exp(rng.normal(np.log(0.00045), 0.9, n)) * SEGMENT_HAZARD[segment], 1e-6, 0.02
        ),
        churn_decay=rng.random(n) < 0.6,
        decay_days=rng.uniform(21, 90, n),
        churn_budget=rng.exponential(1.0, n),
        view_prob=np.minimum(rng.beta(view_beta[:, 0], view_beta[:, 1]) * VIEW_BY_CHANNEL[pref], 0.97),
        activation_prob=activation,
        resp=resp,
        multiplier_sensitivity=np.exp(rng.normal(np.where(persuadable, np.log(0.7), np.log(0.2)), 0.5)),
    )
