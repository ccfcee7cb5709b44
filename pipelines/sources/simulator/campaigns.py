"""Who would complete which offer (the truth), and the campaigns run on it, with churn drawn alongside."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from loyalty_core import OFFER_KINDS, TXN_TYPES
from pipelines.sources.simulator.config import (
    ACTIVATION_DELAY_DAYS,
    DAY,
    INFORMATIONAL_EFFECT,
    MONTH_DAYS,
    NEVER,
    RETENTION_EFFECT,
    SLEEPING_DOG_HAZARD,
    VIEW_DELAY_DAYS,
    Array,
    Calendar,
)
from pipelines.sources.simulator.population import Population, draw_index
from pipelines.sources.simulator.world import (
    BILL_KINDS,
    CATALOGUE,
    CATEGORIES,
    CATEGORY_NAMES,
    MADE_AT_SECONDS,
    PURCHASE,
    PURCHASE_CATEGORIES,
    SEGMENTS,
    TAXES,
    TRANSFER,
    Campaign,
    OfferSpec,
    campaign_days,
    draw_campaign,
)

# --- the truth: completion probabilities per customer and offer -------------------------------------------


def offer_category_indices(offer: OfferSpec) -> list[int]:
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
        cats = offer_category_indices(offer)
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
        arm = draw_index(rng, np.cumsum(probs, axis=1))
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
