"""The generative model behind ``loyalty simulate``: customers, campaigns with churn, transactions, truth.

Everything here is arrays in, arrays out (numpy, vectorised over customers); ``pipelines.simulator`` turns the
result into files. Times are integer seconds from the first instant of the history; ``NEVER`` stands for "no
churn within the history". See ``pipelines.simulator`` for the order in which the pieces are drawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from loyalty_core import TXN_TYPES, FraudLimits, InvalidInput
from pipelines.sim_catalogue import (
    BILL,
    BILL_KINDS,
    CATALOGUE,
    CATEGORIES,
    CATEGORY_NAMES,
    CHANNEL_BY_AGE,
    FUEL,
    HOURS_BILL,
    HOURS_PURCHASE,
    HOURS_TRANSFER,
    INCOME_BAND_EDGES,
    INTERNET_PLANS,
    MADE_AT_SECONDS,
    MAX_AMOUNT_RUB,
    MEDIAN_INCOME,
    MOBILE_PLANS,
    OFFER_KINDS,
    P2P,
    PURCHASE,
    PURCHASE_CATEGORIES,
    REGIONS,
    SEGMENTS,
    TAXES,
    TRANSFER,
    VIEW_BY_CHANNEL,
    WEEKDAY_FACTOR,
    WINTER_HEATING,
    Campaign,
    OfferSpec,
    campaign_days,
    channel_table,
    draw_campaign,
)

Array = npt.NDArray[Any]


DEFAULT_START = dt.date(2025, 1, 1)
MAX_CUSTOMERS = 9_999_999  # customer ids are C + 7 digits
MAX_DAYS = 3660
DAY = 86_400
NEVER = np.int64(2**62)  # "no churn": later than any time of the history

# The response model. Delays are exponential, in days.
VIEW_DELAY_DAYS = 1.5
ACTIVATION_DELAY_DAYS = 1.0
SEGMENT_SHARES = np.array([0.30, 0.20, 0.38, 0.12])  # persuadable, sure_thing, lost_cause, sleeping_dog
SEGMENT_ACTIVITY = np.array([1.0, 1.6, 0.6, 1.0])  # sure things are the busy customers who buy anyway
SEGMENT_HAZARD = np.array([1.0, 0.8, 1.8, 1.2])
SEGMENT_VIEW_BETA = np.array([[6.0, 3.0], [6.0, 3.0], [2.0, 6.0], [4.0, 4.0]])
SEGMENT_ACTIVATION = np.array([np.nan, 0.85, 0.08, 0.10])  # P(activate | viewed); persuadables: see below
RETENTION_EFFECT = 0.6  # an offer taken up by a responder multiplies the hazard by 1 - this x q_incremental
INFORMATIONAL_EFFECT = 0.5  # an informational offer seen: hazard x (1 - this x resp_informational)
SLEEPING_DOG_HAZARD = 2.5  # a sleeping dog who sees an offer: hazard x this until the next campaign
MONTH_DAYS = 365.25 / 12
BILL_JITTER_DAYS = 2


@dataclass(frozen=True, slots=True)
class SimConfig:
    customers: int
    days: int
    seed: int
    start: dt.date = DEFAULT_START

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)

    @property
    def end_at(self) -> dt.datetime:
        return self.start_at + dt.timedelta(days=self.days)

    @classmethod
    def ending(cls, end: dt.date, *, customers: int, days: int, seed: int) -> SimConfig:
        """The history of ``days`` days whose last day is the one before ``end``: a bank that stops where
        ``end`` begins, so postings dated from ``end`` on continue it (the demo's ``end`` is today)."""
        return cls(customers=customers, days=days, seed=seed, start=end - dt.timedelta(days=days))


def today_utc(now: dt.datetime | None = None) -> dt.date:
    """Today's date in UTC, the calendar every date of the ledger is written in."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()


def check_config(config: SimConfig, now: dt.datetime) -> None:
    """Refuse sizes the generator cannot honour, and a history that would end in the future."""
    if not isinstance(config.customers, int) or not 1 <= config.customers <= MAX_CUSTOMERS:
        raise InvalidInput(
            f"customers must be between 1 and {MAX_CUSTOMERS:,}, got {config.customers}", field="customers"
        )
    if not isinstance(config.days, int) or not 1 <= config.days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {config.days}", field="days")
    if not isinstance(config.seed, int) or not 0 <= config.seed < 2**63:
        raise InvalidInput(
            f"seed must be a non-negative integer below 2**63, got {config.seed}", field="seed"
        )
    if config.end_at > now:
        raise InvalidInput(
            f"a history of {config.days} days from {config.start.isoformat()} would end on "
            f"{config.end_at.date().isoformat()}, in the future; choose an earlier start or fewer days",
            field="start",
        )


# --- calendar ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calendar:
    start_epoch: int  # seconds since 1970 of the first instant
    days: int
    weekday: Array  # per day: the weekday factor
    dom: Array  # per day: day of month, 1-based
    dim: Array  # per day: days in that month
    salary_norm: Array  # per day: the mean of exp(-delta/3) over that month, so salary rhythms average to 1
    month_first_day: Array  # per calendar month touching the history: its 1st, in days from the start
    month_dim: Array
    month_number: Array  # 1..12
    month_start: Array  # seconds from the start at which each month's spill begins (the first is 0)

    @property
    def end(self) -> int:
        return self.days * DAY


def make_calendar(config: SimConfig) -> Calendar:
    first = np.datetime64(config.start.isoformat(), "D")
    dates = first + np.arange(config.days)
    months = dates.astype("datetime64[M]")
    dom = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    dim = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    span = np.arange(months[0], months[-1] + 1)
    month_first = (span.astype("datetime64[D]") - first).astype(np.int64)
    return Calendar(
        start_epoch=int(first.astype("datetime64[s]").astype(np.int64)),
        days=config.days,
        weekday=WEEKDAY_FACTOR[weekday],
        dom=dom,
        dim=dim,
        salary_norm=(1 - np.exp(-dim / 3)) / (dim * (1 - np.exp(-1 / 3))),
        month_first_day=month_first,
        month_dim=((span + 1).astype("datetime64[D]") - span.astype("datetime64[D]")).astype(np.int64),
        month_number=span.astype(np.int64) % 12 + 1,
        month_start=np.maximum(month_first, 0) * DAY,
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


def _pick(rng: np.random.Generator, cum: Array) -> Array:
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
    pref = _pick(rng, np.cumsum(CHANNEL_BY_AGE, axis=1)[np.searchsorted([30, 55], age, side="right")])
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


# --- the truth: completion probabilities per customer and offer -------------------------------------------


def _category_indices(offer: OfferSpec) -> list[int]:
    """Category indices a transaction may have to satisfy the offer (taxes are never an offer's target)."""
    types = offer.txn_types or TXN_TYPES
    allowed = [k for k, c in enumerate(CATEGORIES) if TXN_TYPES[c.txn_type] in types and k != TAXES]
    if offer.categories is None:
        return allowed
    return [k for k in allowed if CATEGORY_NAMES[k] in offer.categories]


def _share_at_least(pop: Population, k: int, threshold: float) -> Array:
    """P(one amount of category k >= threshold RUB) for each customer (lognormal; transfers are floored to
    whole hundreds, which keeps this exact for thresholds in hundreds)."""
    c = CATEGORIES[k]
    if threshold <= c.minimum:
        return np.ones(pop.n)
    mu = np.log(c.median) + c.income_elasticity * pop.log_income_ratio
    return np.asarray(ndtr((mu - np.log(threshold)) / c.sigma))


def funnel_reach(days: int) -> float:
    """P(viewed and activated within the validity | the customer would), exponential delays in sequence."""
    a, b = VIEW_DELAY_DAYS, ACTIVATION_DELAY_DAYS
    return float(1 - (a * np.exp(-days / a) - b * np.exp(-days / b)) / (a - b))


@dataclass(frozen=True, slots=True)
class OfferTruth:
    p_control: Array  # (n, offers): P(meets the condition in a validity window, no offer)
    p_treated: Array  # P(completed | sent at a campaign start)
    p_meet: Array  # P(meets the condition while the offer runs | sent), activated or not
    q_incremental: Array  # P(extra qualifying transaction | activated)


def offer_truth(pop: Population) -> OfferTruth:
    """Exact probabilities of the model for a customer in base state (alive, not decaying).

    Organic qualifying transactions are Poisson with daily rate ``activity x type share x taste x P(amount >=
    threshold)`` (the weekday factor averages to exactly 1 over the whole-week validity periods; the salary
    rhythm is averaged out), so none in a window of W days has probability ``exp(-W rate)``. Monthly bills
    fall in a W-day window with probability ``W / 30.44``, averaged over the phase of the month: campaigns
    that start near the same day of each month see the bill offer's control rate off by up to ~0.02.
    Completion needs the offer viewed and activated (``funnel_reach``) and then a qualifying transaction,
    organic or the incremental one, within the activation's own W days.

    ``p_treated - p_control`` (the contract's ``uplift``) compares *completing* with *meeting the condition*:
    a sure thing who would buy anyway but does not activate lowers it. ``p_meet - p_control`` is the uplift
    in meeting the condition, the part the offer really causes.
    """
    n, m = pop.n, len(CATALOGUE)
    p_control = np.zeros((n, m))
    q_inc = np.zeros((n, m))
    p_treated = np.zeros((n, m))
    p_meet = np.zeros((n, m))
    purchase_rate = pop.activity_rate * (1 - pop.transfer_share)
    for j, offer in enumerate(CATALOGUE):
        if offer.kind == "informational":
            continue
        threshold = float(offer.completes_at() or 0)
        cats = _category_indices(offer)
        rate = np.zeros(n)
        bills_none = np.ones(n)
        for k in cats:
            kind = CATEGORIES[k].txn_type
            if kind == PURCHASE:
                col = PURCHASE_CATEGORIES.index(k)
                rate += purchase_rate * pop.taste[:, col] * _share_at_least(pop, k, threshold)
            elif kind == TRANSFER:
                rate += pop.activity_rate * pop.transfer_share * _share_at_least(pop, k, threshold)
            else:
                b = BILL_KINDS.index(k)
                big_enough = pop.bill_amount[:, b] >= threshold
                bills_none *= 1 - pop.bill_regularity * pop.has_bill[:, b] * big_enough
        w = offer.duration_days
        p_bill = min(w / MONTH_DAYS, 1.0) * (1 - bills_none)
        p_control[:, j] = 1 - np.exp(-w * rate) * (1 - p_bill)
        if offer.kind == "multiplier":
            appeal = 1 - np.exp(-pop.multiplier_sensitivity * float(offer.multiplier - 1))
        else:
            appeal = 1 - np.exp(-pop.income / (20 * threshold))
        purchase_cols = [PURCHASE_CATEGORIES.index(k) for k in cats if k in PURCHASE_CATEGORIES]
        if offer.categories is not None and purchase_cols and len(purchase_cols) == len(cats):
            appeal = appeal * (pop.taste[:, purchase_cols].sum(axis=1) > 0)  # no car, no fuel offer uptake
        q_inc[:, j] = pop.resp[:, offer.kind_index] * appeal
        reach = pop.view_prob * pop.activation_prob[:, offer.kind_index] * funnel_reach(w)
        p_treated[:, j] = reach * (1 - (1 - p_control[:, j]) * (1 - q_inc[:, j]))
        p_meet[:, j] = 1 - (1 - p_control[:, j]) * (1 - reach * q_inc[:, j])
    return OfferTruth(p_control=p_control, p_treated=p_treated, p_meet=p_meet, q_incremental=q_inc)


# --- campaigns and churn -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecisionLog:
    """One row per (campaign, eligible customer); times in seconds from the start, -1: did not happen."""

    campaign: Array
    customer: Array
    offer: Array  # catalogue index, -1 for the control group
    probability: Array
    made: Array
    sent: Array
    viewed: Array
    activated: Array
    incremental: Array  # time of the extra qualifying transaction
    hazard_factor: Array

    def __len__(self) -> int:
        return len(self.customer)


class _Churn:
    """Integrates each customer's piecewise-constant hazard until it reaches their Exp(1) budget."""

    def __init__(self, pop: Population) -> None:
        self.pop = pop
        self.spent = np.zeros(pop.n)
        self.at = np.full(pop.n, NEVER, dtype=np.int64)

    def advance(self, idx: Array, start: Array | int, stop: Array | int, factor: Array | float) -> None:
        a, b, f = (np.broadcast_to(np.asarray(x), idx.shape) for x in (start, stop, factor))
        alive = self.at[idx] == NEVER
        idx, a, b, f = idx[alive], a[alive], b[alive], f[alive]
        lo = np.maximum(a, self.pop.live_from[idx])
        rate = self.pop.churn_hazard[idx] * f
        spend = rate * np.maximum(b - lo, 0) / DAY
        left = self.pop.churn_budget[idx] - self.spent[idx]
        cross = spend >= left
        self.at[idx[cross]] = lo[cross] + np.floor(left[cross] / rate[cross] * DAY).astype(np.int64)
        self.spent[idx[~cross]] += spend[~cross]


def run_campaigns(
    cal: Calendar, pop: Population, truth: OfferTruth, rng: np.random.Generator
) -> tuple[list[Campaign], DecisionLog, Array]:
    """Campaigns in time order, with churn drawn alongside: (campaigns, decision log, churn time or NEVER)."""
    starts = campaign_days(rng, cal.days)
    campaigns = [draw_campaign(rng, i + 1, day) for i, day in enumerate(starts)]
    bounds = [d * DAY for d in starts] + [cal.end]
    churn = _Churn(pop)
    everyone = np.arange(pop.n)
    churn.advance(everyone, 0, bounds[0], 1.0)  # up to the first campaign, or the end if none
    duration = np.array([o.duration_days * DAY for o in CATALOGUE])
    kinds = np.array([o.kind_index for o in CATALOGUE])
    informational = OFFER_KINDS.index("informational")
    parts: list[dict[str, Array]] = []
    for k, camp in enumerate(campaigns):
        begin, until = bounds[k], bounds[k + 1]
        eligible = (pop.live_from <= begin) & (churn.at == NEVER)
        idx = np.flatnonzero(eligible)
        others = np.flatnonzero(~eligible)
        n = len(idx)
        probs = camp.probabilities[pop.pref[idx]]
        arm = _pick(rng, np.cumsum(probs, axis=1))
        offer = np.array(camp.arms)[arm]
        treated = offer >= 0
        o = np.maximum(offer, 0)
        window = duration[o]
        made = np.full(n, begin + MADE_AT_SECONDS, dtype=np.int64)
        sent = made + rng.integers(0, 2 * 3600, n)
        view_delay = np.floor(rng.exponential(VIEW_DELAY_DAYS, n) * DAY).astype(np.int64)
        act_delay = np.floor(rng.exponential(ACTIVATION_DELAY_DAYS, n) * DAY).astype(np.int64)
        viewed = treated & (rng.random(n) < pop.view_prob[idx]) & (view_delay < window)
        kind = kinds[o]
        activated = (
            viewed & (rng.random(n) < pop.activation_prob[idx, kind]) & (view_delay + act_delay < window)
        )
        q = truth.q_incremental[idx, o]
        incremental = activated & (rng.random(n) < q)
        spread = rng.random(n)
        t_view = sent + view_delay
        t_act = t_view + act_delay
        t_inc = t_act + np.floor(window * spread**2).astype(np.int64)  # soon after activation, mostly
        # When the offer starts to matter for churn, and by how much.
        seg = pop.segment[idx]
        respond_at = np.full(n, begin, dtype=np.int64)
        factor = np.ones(n)
        persuaded = activated & (seg == SEGMENTS.index("persuadable"))
        respond_at[persuaded] = t_act[persuaded]
        factor[persuaded] = 1 - RETENTION_EFFECT * q[persuaded]
        inf_resp = pop.resp[idx, informational]
        informed = viewed & (kind == informational) & (inf_resp > 0)
        respond_at[informed] = t_view[informed]
        factor[informed] = 1 - INFORMATIONAL_EFFECT * inf_resp[informed]
        annoyed = viewed & (seg == SEGMENTS.index("sleeping_dog"))
        respond_at[annoyed] = t_view[annoyed]
        factor[annoyed] = SLEEPING_DOG_HAZARD
        respond_at = np.minimum(respond_at, until)
        churn.advance(idx, begin, respond_at, 1.0)
        churn.advance(idx, respond_at, until, factor)
        churn.advance(others, begin, until, 1.0)
        parts.append(
            {
                "campaign": np.full(n, k),
                "customer": idx,
                "offer": offer,
                "probability": probs[np.arange(n), arm],
                "made": made,
                "sent": np.where(treated, sent, -1),
                "viewed": np.where(viewed, t_view, -1),
                "activated": np.where(activated, t_act, -1),
                "incremental": np.where(incremental, t_inc, -1),
                "hazard_factor": factor,
            }
        )
    churn_at = np.where(churn.at < cal.end, churn.at, NEVER)
    cols = {
        name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        for name in DecisionLog.__slots__
    }
    # Nothing happens after churn or after the end of the history; each stage needs the one before it.
    limit = np.minimum(churn_at[cols["customer"]], cal.end)
    for stage, before in (("viewed", None), ("activated", "viewed"), ("incremental", "activated")):
        ok = (cols[stage] >= 0) & (cols[stage] < limit)
        if before is not None:
            ok &= cols[before] >= 0
        cols[stage] = np.where(ok, cols[stage], -1)
    return campaigns, DecisionLog(**cols), churn_at


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
    return _pick(rng, _CHANNEL_CUM[cat, pref])


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
    cat = np.where(transfer, P2P, _PURCHASE_CATS[_pick(rng, taste_cum[c - lo])])
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
        cats = np.array(_category_indices(offer))
        purchase = np.isin(cats, _PURCHASE_CATS)
        if purchase.all():
            cols = np.array([PURCHASE_CATEGORIES.index(k) for k in cats])
            cum = np.cumsum(pop.taste[c][:, cols] + 1e-12, axis=1)
        else:
            cum = np.cumsum(np.broadcast_to(1.0 * ~purchase, (len(c), len(cats))), axis=1)
        cat = cats[_pick(rng, cum)]
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
