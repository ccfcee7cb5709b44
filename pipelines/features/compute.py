"""Customer features as of a cutoff, seeing only what happened strictly before it.

``compute_features(frames, as_of)`` is pure and works on any subset of customers: the pandas engine calls it
once on everything, the Spark engine once per bucket of customers (``spark_engine``), and both get the same
rows. It is vectorised end to end: customer ids become integer codes once, and every aggregate is a
group-by over those codes (``numpy.bincount`` for sums and counts, ``ufunc.at`` for minima and maxima,
pandas ``groupby`` for running sums), never a Python loop over customers or rows.

Why the results do not depend on how the customers were partitioned: each source's rows are first put in
one canonical order (time, then id) unless they already are (the extract reads them that way), so every
floating-point sum adds a customer's values in the same order whichever engine or partition computed it.

Point in time: a fact counts only if it is dated before the cutoff (for the population too: a customer is
known once joined or once any fact about them is dated before the cutoff). Nothing reads current state such
as ``lots.remaining`` or ``members.balance``, which already reflect the future of a past cutoff.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from loyalty_core import OFFER_FUNNEL, OFFER_KINDS, TXN_TYPES, InvalidInput
from pipelines.features.aggregates import (
    CutoffRows,
    active_periods,
    circular_day,
    days_before,
    distinct_days,
    id_codes,
    per_customer_by,
    per_customer_max,
    per_customer_min,
    per_customer_sum,
    rounded_ints,
    safe_ratio,
    vocab_codes,
    window_sums,
)
from pipelines.features.catalogue import (
    CATEGORIES,
    CHANNELS,
    GENDERS,
    INCOME_BANDS,
    REGIONS,
)
from pipelines.features.config import FeatureConfig, default_config
from pipelines.features.cutoff import DAY_US, NAT, TIME_OF, known_customers, micros, to_cutoff
from pipelines.features.frames import LedgerFrames

REDEEM_KINDS = ("redeem", "capture")
MEAN_MONTH_DAYS = 365.2425 / 12


def _transactions(out: dict[str, np.ndarray], rows: CutoffRows, n: int, now: int) -> None:
    amount = rows.col("amount").astype(np.float64)
    count = window_sums(rows, n)
    spend = window_sums(rows, n, amount)
    for w in (7, 30, 90, 365):
        out[f"txn_count_{w}d"] = rounded_ints(count[w])
        out[f"txn_amount_{w}d"] = spend[w]
    out["txn_amount_mean_30d"] = safe_ratio(spend[30], count[30])
    out["txn_amount_mean_365d"] = safe_ratio(spend[365], count[365])
    year = rows.age <= 365
    c365, t365, a365 = rows.code[year], rows.t[year], amount[year]
    out["txn_amount_max_365d"] = per_customer_max(c365, n, a365)
    squares = per_customer_sum(c365, n, a365 * a365)
    mean = out["txn_amount_mean_365d"]
    out["txn_amount_std_365d"] = np.sqrt(np.maximum(safe_ratio(squares, count[365]) - mean * mean, 0.0))
    out["txn_points_365d"] = rounded_ints(
        per_customer_sum(c365, n, rows.col("points").astype(np.float64)[year])
    )
    first, last = per_customer_min(rows.code, n, rows.t), per_customer_max(rows.code, n, rows.t)
    out["days_since_last_txn"] = days_before(last, now)
    out["days_since_first_txn"] = days_before(first, now)
    span = (per_customer_max(c365, n, t365) - per_customer_min(c365, n, t365)) / DAY_US
    out["mean_gap_days_365d"] = safe_ratio(span, count[365] - 1)
    out["recency_gap_ratio"] = safe_ratio(out["days_since_last_txn"], out["mean_gap_days_365d"])
    month = rows.age <= 30
    quarter = rows.age <= 90
    out["active_days_30d"] = distinct_days(rows.code[month], n, rows.t[month], now, 30)
    out["active_days_90d"] = distinct_days(rows.code[quarter], n, rows.t[quarter], now, 90)
    out["active_months_12m"] = active_periods(rows.code, n, rows.age, 30, 12)
    out["spend_trend_30d"] = np.log1p(spend[30]) - np.log1p((spend[120] - spend[30]) / 3)
    out["spend_trend_90d"] = np.log1p(spend[90]) - np.log1p(spend[180] - spend[90])
    out["txn_trend_30d"] = np.log1p(count[30]) - np.log1p((count[120] - count[30]) / 3)
    weekday = (t365 // DAY_US + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    out["weekend_share_365d"] = safe_ratio(
        per_customer_sum(c365, n, mask=weekday >= 5).astype(np.float64), count[365]
    )

    types = rows.vocab("type", TXN_TYPES)
    recent = rows.age <= 90
    by_type_count = per_customer_by(rows.code[recent], n, types[recent], len(TXN_TYPES))
    by_type_amount = per_customer_by(rows.code[recent], n, types[recent], len(TXN_TYPES), amount[recent])
    by_type_year = per_customer_by(c365, n, types[year], len(TXN_TYPES))
    for i, t in enumerate(TXN_TYPES):
        out[f"{t}_count_90d"] = by_type_count[:, i].astype(np.int64)
        out[f"{t}_amount_90d"] = by_type_amount[:, i]
        out[f"{t}_share_365d"] = safe_ratio(by_type_year[:, i].astype(np.float64), count[365])

    cats = per_customer_by(c365, n, rows.vocab("category", CATEGORIES)[year], len(CATEGORIES), a365)
    total = cats.sum(axis=1)
    shares = np.where(total[:, None] > 0, cats / np.where(total > 0, total, 1)[:, None], np.nan)
    for i, c in enumerate(CATEGORIES):
        out[f"category_{c}_share_365d"] = shares[:, i]
    out["categories_365d"] = np.count_nonzero(cats > 0, axis=1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(shares > 0, shares * np.log(np.where(shares > 0, shares, 1)), 0.0)
    out["category_entropy_365d"] = np.where(total > 0, 0.0 - plogp.sum(axis=1), np.nan)
    channels = per_customer_by(c365, n, rows.vocab("channel", CHANNELS)[year], len(CHANNELS))
    for i, c in enumerate(CHANNELS):
        out[f"channel_{c}_share_365d"] = safe_ratio(channels[:, i].astype(np.float64), count[365])

    purchases = year & (types == TXN_TYPES.index("purchase"))
    strength, angle = circular_day(rows.code[purchases], n, rows.t[purchases], amount[purchases])
    out["salary_day_strength_365d"] = strength
    out["salary_day_365d"] = 1 + angle * MEAN_MONTH_DAYS
    bills = types == TXN_TYPES.index("bill_payment")
    bills_year = year & bills
    out["bill_day_regularity_365d"] = circular_day(rows.code[bills_year], n, rows.t[bills_year], None)[0]
    out["bill_months_12m"] = active_periods(rows.code[bills], n, rows.age[bills], 30, 12)


def _tier(
    out: dict[str, np.ndarray],
    txns: CutoffRows,
    refunds: CutoffRows,
    n: int,
    cutoff: pd.Timestamp,
    config: FeatureConfig,
) -> None:
    """Tier as the rules decide it at the cutoff: qualifying spend of the 12 complete calendar months before
    the cutoff's month (``loyalty_core.rules.tier_window``)."""
    month = cutoff.tz_localize(None).to_period("M")
    start = pd.Timestamp((month - 12).start_time, tz="UTC").as_unit("us").value // 1000
    end = pd.Timestamp(month.start_time, tz="UTC").as_unit("us").value // 1000
    qualifying = config.qualifying_types
    ok = (txns.t >= start) & (txns.t < end) & txns.isin("type", qualifying)
    spend = per_customer_sum(txns.code, n, txns.col("amount").astype(np.float64), ok)
    if refunds.n:
        original = refunds.times("original_at")
        back = (original >= start) & (original < end) & refunds.isin("type", qualifying)
        spend = spend - per_customer_sum(refunds.code, n, refunds.col("amount").astype(np.float64), back)
    spend = np.round(spend, 2)  # cents, as the ledger's Decimal arithmetic; thresholds compare exactly
    levels = np.asarray(config.tier_min_spend)
    tier = np.maximum(np.searchsorted(levels, spend, side="right") - 1, 0)
    out["tier"] = tier.astype(np.int64)
    out["tier_spend_12m"] = spend
    nxt = np.append(levels, np.nan)[np.minimum(tier + 1, len(levels))]
    out["spend_to_next_tier"] = nxt - spend
    year = refunds.age <= 365
    out["refunds_365d"] = per_customer_sum(refunds.code, n, mask=year).astype(np.int64)
    out["refund_amount_365d"] = per_customer_sum(
        refunds.code, n, refunds.col("amount").astype(np.float64), year
    )


def _points(out: dict[str, np.ndarray], moves: CutoffRows, lots: CutoffRows, n: int, now: int) -> None:
    points = moves.col("points").astype(np.int64)
    pts = points.astype(np.float64)  # bincount sums in float64: exact for integers below 2**53
    on_points = moves.isin("account", ("points",))
    balance = rounded_ints(per_customer_sum(moves.code, n, pts, on_points))
    out["points_balance"] = balance
    out["points_debt"] = -rounded_ints(per_customer_sum(moves.code, n, pts, moves.isin("account", ("debt",))))
    credited = on_points & (points > 0)
    for w in (30, 90, 365):
        out[f"points_earned_{w}d"] = rounded_ints(
            per_customer_sum(moves.code, n, pts, credited & (moves.age <= w))
        )
    redeemed = on_points & moves.isin("kind", REDEEM_KINDS)
    for w in (90, 365):
        window = redeemed & (moves.age <= w)
        out[f"redemptions_{w}d"] = per_customer_sum(moves.code, n, mask=window).astype(np.int64)
        out[f"points_redeemed_{w}d"] = -rounded_ints(per_customer_sum(moves.code, n, pts, window))
    out["points_redeemed_total"] = -rounded_ints(per_customer_sum(moves.code, n, pts, redeemed))
    out["days_since_last_redemption"] = days_before(
        per_customer_max(moves.code[redeemed], n, moves.t[redeemed]), now
    )
    out["redemption_rate_365d"] = safe_ratio(
        out["points_redeemed_365d"].astype(np.float64), out["points_earned_365d"].astype(np.float64)
    )
    year = on_points & (moves.age <= 365)
    out["points_expired_365d"] = -rounded_ints(
        per_customer_sum(moves.code, n, pts, year & moves.isin("kind", ("expire",)))
    )
    out["points_reversed_365d"] = -rounded_ints(
        per_customer_sum(moves.code, n, pts, year & moves.isin("kind", ("reverse",)))
    )
    activity = year & moves.isin("kind", ("activity",)) & (points > 0)
    out["activities_365d"] = per_customer_sum(moves.code, n, mask=activity).astype(np.int64)
    out["activity_points_365d"] = rounded_ints(per_customer_sum(moves.code, n, pts, activity))
    _expiring(out, lots, np.maximum(balance, 0), n, now)


def _expiring(out: dict[str, np.ndarray], lots: CutoffRows, balance: np.ndarray, n: int, now: int) -> None:
    """Points expiring soon, from the lots alive at the cutoff and the balance then.

    Lots do not keep their consumption history, and today's ``remaining`` already shows spending after the
    cutoff. With one lot lifetime, earliest-expiring is earliest-earned, so spending before the cutoff ate
    the oldest lots first (FIFO) and the balance at the cutoff is held by the NEWEST lots: a lot keeps
    ``clip(balance - points of newer alive lots, 0, its points)``. Approximate where the ledger departs
    from FIFO: a reversal takes its own transaction's lot first, and lots of an expiry that has not been
    run yet still count in the balance (run ``loyalty expire`` before building features for the past).
    """
    expires = lots.times("expires_at")
    alive = expires > now
    code = lots.code[alive]
    pts = lots.col("points").astype(np.int64)[alive]
    # Rows are in earning order, so a running sum per customer counts the lots up to and including each.
    upto = pd.Series(pts).groupby(code).cumsum().to_numpy()
    total = np.bincount(code, weights=pts.astype(np.float64), minlength=n).astype(np.int64)
    newer = total[code] - upto
    kept = np.clip(balance[code] - newer, 0, pts)
    for w in (30, 90):
        soon = expires[alive] <= now + w * DAY_US
        out[f"points_expiring_{w}d"] = rounded_ints(per_customer_sum(code, n, kept.astype(np.float64), soon))


def _offers(out: dict[str, np.ndarray], events: CutoffRows, acts: CutoffRows, n: int, now: int) -> None:
    funnel = events.vocab("event", OFFER_FUNNEL)
    kinds = events.vocab("offer_kind", OFFER_KINDS)
    per_event = per_customer_by(events.code, n, funnel, len(OFFER_FUNNEL))
    kind_known = np.where(kinds >= 0, funnel * len(OFFER_KINDS) + kinds, -1)
    per_kind = per_customer_by(
        events.code, n, np.where(funnel >= 0, kind_known, -1), len(OFFER_FUNNEL) * len(OFFER_KINDS)
    )
    for i, e in enumerate(OFFER_FUNNEL):
        out[f"offers_{e}"] = per_event[:, i].astype(np.int64)
        for j, k in enumerate(OFFER_KINDS):
            out[f"offers_{e}_{k}"] = per_kind[:, i * len(OFFER_KINDS) + j].astype(np.int64)
    sent = funnel == OFFER_FUNNEL.index("sent")
    out["offers_sent_30d"] = per_customer_sum(events.code, n, mask=sent & (events.age <= 30)).astype(np.int64)
    out["offers_sent_90d"] = per_customer_sum(events.code, n, mask=sent & (events.age <= 90)).astype(np.int64)
    n_sent = out["offers_sent"].astype(np.float64)
    out["offer_view_rate"] = safe_ratio(out["offers_viewed"].astype(np.float64), n_sent)
    out["offer_completion_rate"] = safe_ratio(out["offers_completed"].astype(np.float64), n_sent)
    for k in OFFER_KINDS:
        out[f"offer_completion_rate_{k}"] = safe_ratio(
            out[f"offers_completed_{k}"].astype(np.float64), out[f"offers_sent_{k}"].astype(np.float64)
        )
    for name, event in (("", "sent"), ("_viewed", "viewed"), ("_completed", "completed")):
        rows = funnel == OFFER_FUNNEL.index(event)
        out[f"days_since_last_offer{name}"] = days_before(
            per_customer_max(events.code[rows], n, events.t[rows]), now
        )
    expires = acts.times("expires_at")
    completed = acts.times("completed_at")
    out["offers_active"] = per_customer_sum(acts.code, n, mask=expires > now).astype(np.int64)
    out["activations_365d"] = per_customer_sum(acts.code, n, mask=acts.age <= 365).astype(np.int64)
    done = (completed != NAT) & (completed < now) & (completed >= now - 365 * DAY_US)
    out["activation_completions_365d"] = per_customer_sum(acts.code, n, mask=done).astype(np.int64)


def _customers(
    out: dict[str, np.ndarray],
    customers: pd.DataFrame,
    ids: pd.Index,
    first_seen: np.ndarray,
    cutoff: pd.Timestamp,
) -> None:
    n = len(ids)
    now = cutoff.value // 1000
    code = id_codes(customers["customer_id"], ids)
    if (customers["customer_id"].duplicated()).any():
        dup = customers["customer_id"][customers["customer_id"].duplicated()].iloc[0]
        raise InvalidInput(f"customers lists {dup!r} twice", field="customer_id")
    mine = code >= 0
    code = code[mine]

    def place(values: np.ndarray, fill: float) -> np.ndarray:
        arr = np.full(n, fill, dtype=values.dtype)
        arr[code] = values[mine]
        return arr

    joined = place(micros(customers["joined_on"]), NAT)
    joined = np.where((joined != NAT) & (joined < now), joined, NAT)
    start = np.where(joined != NAT, joined.astype(np.float64), first_seen)
    out["tenure_days"] = (now - start) / DAY_US
    out["age_years"] = cutoff.year - place(customers["birth_year"].to_numpy(dtype=np.float64), np.nan)
    out["income"] = place(customers["income"].to_numpy(dtype=np.float64), np.nan)
    for name, col, vocabulary in (
        ("gender", "gender", GENDERS),
        ("region", "region", REGIONS),
        ("income_band", "income_band", INCOME_BANDS),
        ("preferred_channel", "channel", CHANNELS),
    ):
        out[name] = place(vocab_codes(customers[col], vocabulary), -1).astype(np.int64)


def compute_features(
    frames: LedgerFrames,
    as_of: dt.datetime | dt.date | str | pd.Timestamp,
    config: FeatureConfig | None = None,
) -> pd.DataFrame:
    """One row per customer known before ``as_of``: keys ``customer_id``, ``as_of``, then the catalogue.

    Works on any subset of customers (a partition) and gives each customer the same row whatever else is
    in the frames. Columns and dtypes are exactly ``config.catalogue`` (see ``pipelines.features.catalogue``).
    """
    config = config or default_config()
    cutoff = to_cutoff(as_of)
    now = cutoff.value // 1000
    ids = known_customers(frames, cutoff)
    n = len(ids)
    rows = {
        name: CutoffRows(getattr(frames, name), col, ids, now)
        for name, col in TIME_OF.items()
        if name != "customers"
    }
    out: dict[str, np.ndarray] = {}
    _transactions(out, rows["transactions"], n, now)
    _tier(out, rows["transactions"], rows["refunds"], n, cutoff, config)
    _points(out, rows["movements"], rows["lots"], n, now)
    _offers(out, rows["offer_events"], rows["activations"], n, now)
    first_seen = np.fmin.reduce([per_customer_min(r.code, n, r.t.astype(np.float64)) for r in rows.values()])
    _customers(out, frames.customers, ids, first_seen, cutoff)
    catalogue = config.catalogue
    names = [f.name for f in catalogue]
    assert set(out) == set(names), f"features and catalogue differ: {set(out) ^ set(names)}"
    result = pd.DataFrame({f.name: out[f.name].astype(f.dtype) for f in catalogue})
    result.insert(0, "customer_id", pd.Series(ids.to_numpy(), dtype="str"))
    result.insert(1, "as_of", pd.Series(np.full(n, now, dtype="datetime64[us]")).dt.tz_localize("UTC"))
    return result
