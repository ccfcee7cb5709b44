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
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from loyalty_core import DEFAULT_RULES, OFFER_KINDS, TXN_TYPES, InvalidInput, Rules, load_rules
from pipelines.catalogue import (
    CATALOGUE,
    CATEGORIES,
    CHANNELS,
    GENDERS,
    INCOME_BANDS,
    OFFER_FUNNEL,
    REGIONS,
    Feature,
    build_catalogue,
)
from pipelines.frames import TS, LedgerFrames

DAY_US = 86_400_000_000
NAT = np.iinfo(np.int64).min
# Nested windows (days) the sums are taken over: the catalogue's windows plus those the trends compare.
EDGES = (7, 30, 90, 120, 180, 365)
REDEEM_KINDS = ("redeem", "capture")
MEAN_MONTH_DAYS = 365.2425 / 12

# Each per-customer frame and the time that dates its facts (what "before the cutoff" is measured on).
TIME_OF = {
    "customers": "joined_on",
    "transactions": "occurred_at",
    "refunds": "occurred_at",
    "movements": "effective_at",
    "lots": "earned_at",
    "offer_events": "occurred_at",
    "activations": "activated_at",
}


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """What the features need of the earning rules: the tiers and which spend qualifies for them."""

    tiers: tuple[str, ...]
    tier_min_spend: tuple[float, ...]
    qualifying_types: tuple[str, ...]

    @classmethod
    def from_rules(cls, rules: Rules) -> FeatureConfig:
        return cls(
            tiers=tuple(t.name for t in rules.tiers),
            tier_min_spend=tuple(float(t.min_spend) for t in rules.tiers),
            qualifying_types=tuple(sorted(rules.qualifying_types)),
        )

    @property
    def catalogue(self) -> tuple[Feature, ...]:
        return build_catalogue(self.tiers)


@lru_cache
def default_config() -> FeatureConfig:
    return FeatureConfig.from_rules(load_rules(DEFAULT_RULES))


def to_cutoff(as_of: dt.datetime | dt.date | str | pd.Timestamp) -> pd.Timestamp:
    """The cutoff instant (UTC): a date means its midnight, so the features see the days before it."""
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of) if len(as_of) == 10 else dt.datetime.fromisoformat(as_of)
        except ValueError as exc:
            raise InvalidInput(f"as_of {as_of!r} is not a date or an ISO timestamp", field="as_of") from exc
    if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
        return pd.Timestamp(as_of.year, as_of.month, as_of.day, tz="UTC").as_unit("us")
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is None:
        raise InvalidInput("as_of must be timezone-aware (or a plain date)", field="as_of")
    return ts.tz_convert("UTC").as_unit("us")


def micros(col: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (int64; NaT is the int64 minimum), without copying UTC[us] columns."""
    if col.dtype != TS:
        col = pd.to_datetime(col, utc=True).dt.as_unit("us")
    return np.asarray(col.array.asi8)


def known_customers(frames: LedgerFrames, as_of: dt.datetime | dt.date | str | pd.Timestamp) -> pd.Index:
    """Customers joined, or with any fact dated, before the cutoff: the rows of that cutoff (sorted ids)."""
    now = to_cutoff(as_of).value // 1000
    found: list[np.ndarray] = []
    for name, time_col in TIME_OF.items():
        frame: pd.DataFrame = getattr(frames, name)
        if frame.empty:
            continue
        t = micros(frame[time_col])
        ids = frame["customer_id"]
        keep = (t < now) & (t != NAT)
        if isinstance(ids.dtype, pd.CategoricalDtype):
            codes = ids.cat.codes.to_numpy()[keep]
            used = np.bincount(codes, minlength=len(ids.cat.categories)) > 0
            found.append(np.asarray(ids.cat.categories[used], dtype=object))
        else:
            found.append(np.asarray(pd.unique(ids[keep]), dtype=object))
    if not found:
        return pd.Index([], dtype="str", name="customer_id")
    index: pd.Index = pd.Index(np.concatenate(found), dtype="str", name="customer_id").unique().sort_values()
    return index


def id_codes(col: pd.Series, ids: pd.Index) -> np.ndarray:
    """Each row's position in ``ids`` (-1 when absent); a categorical is mapped through its categories."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        mapping = np.append(ids.get_indexer(col.cat.categories), -1)
        return mapping[col.cat.codes.to_numpy()]  # code -1 (missing) picks the appended -1
    return ids.get_indexer(pd.Index(col))


def vocab_codes(col: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Codes in a fixed vocabulary: missing is -1; an unlisted value is ``other`` when the list has it."""
    other = len(vocabulary) - 1 if vocabulary and vocabulary[-1] == "other" else -1
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories.astype("str")
        mapping = pd.Index(vocabulary, dtype="str").get_indexer(cats)
        mapping = np.where(mapping < 0, other, mapping)
        return np.append(mapping, -1)[col.cat.codes.to_numpy()].astype(np.int64)
    known = pd.Index(vocabulary, dtype="str").get_indexer(pd.Index(col.astype("str")))
    return np.where(col.isna().to_numpy(), -1, np.where(known < 0, other, known)).astype(np.int64)


class _Rows:
    """One source's facts dated before the cutoff, in canonical (time, id) order, keyed by customer code."""

    def __init__(self, frame: pd.DataFrame, time_col: str, ids: pd.Index, now: int) -> None:
        self.frame = frame
        t = micros(frame[time_col])
        keep = (t < now) & (t != NAT)
        order: np.ndarray | None = None
        ident = frame["id"].to_numpy() if "id" in frame.columns else np.zeros(len(frame), np.int64)
        if not keep.all():
            order = np.flatnonzero(keep)
        tk = t if order is None else t[order]
        ik = ident if order is None else ident[order]
        if not _canonical(tk, ik):
            resort = np.lexsort((ik, tk))
            order = resort if order is None else order[resort]
        self.order = order
        self.t = t if order is None else t[order]
        self.code = self.take(id_codes(frame["customer_id"], ids))
        self.age = (now - self.t) / DAY_US  # days before the cutoff, > 0
        self.n = len(self.t)

    def take(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def col(self, name: str) -> np.ndarray:
        return self.take(self.frame[name].to_numpy())

    def vocab(self, name: str, vocabulary: tuple[str, ...]) -> np.ndarray:
        return self.take(vocab_codes(self.frame[name], vocabulary))

    def times(self, name: str) -> np.ndarray:
        return self.take(micros(self.frame[name]))

    def isin(self, name: str, values: tuple[str, ...]) -> np.ndarray:
        """Rows whose (categorical) column ``name`` is one of ``values``, comparing categories not rows."""
        col = self.frame[name]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype("category")
        hit = np.append(np.isin(np.asarray(col.cat.categories, dtype=object), list(values)), False)
        return self.take(hit[col.cat.codes.to_numpy()])


def _canonical(t: np.ndarray, ident: np.ndarray) -> bool:
    if len(t) < 2:
        return True
    dt_ = np.diff(t)
    return bool(np.all((dt_ > 0) | ((dt_ == 0) & (np.diff(ident) > 0))))


def _sum(
    code: np.ndarray, n: int, weights: np.ndarray | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-customer sum of ``weights`` (count when None) over the rows in ``mask``: float64 or int64."""
    if mask is not None:
        code = code[mask]
        weights = weights[mask] if weights is not None else None
    return np.bincount(code, weights=weights, minlength=n)


def _by(code: np.ndarray, n: int, sub: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-customer sums split by a small code ``sub`` in [0, k): an (n, k) matrix; rows with sub < 0 drop."""
    ok = sub >= 0
    w = None if weights is None else weights[ok]
    return np.bincount(code[ok] * k + sub[ok], weights=w, minlength=n * k).reshape(n, k)


def _max(code: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Per-customer maximum (NaN for none); float64 on both sides keeps ``ufunc.at`` on its fast path."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, code, values.astype(np.float64, copy=False))
    return np.where(np.isinf(out), np.nan, out)


def _min(code: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    out = np.full(n, np.inf)
    np.minimum.at(out, code, values.astype(np.float64, copy=False))
    return np.where(np.isinf(out), np.nan, out)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _days(first_or_last_us: np.ndarray, now: int) -> np.ndarray:
    return (now - first_or_last_us) / DAY_US


def _ints(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.rint(x), dtype=np.int64)


def _windowed(rows: _Rows, n: int, weights: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Sums over each window of ``EDGES`` at once: {days: per-customer sum over [cutoff - days, cutoff)}."""
    bucket = np.searchsorted(np.asarray(EDGES, dtype=np.float64), rows.age, side="left")
    cum = np.cumsum(_by(rows.code, n, bucket, len(EDGES) + 1, weights), axis=1)
    return {w: cum[:, i] for i, w in enumerate(EDGES)}


# cos and sin of each day of a month of each length, from math (exact and the same everywhere).
_ANGLE = np.array(
    [[2 * math.pi * (d - 1) / length for d in range(1, 32)] for length in range(28, 32)], dtype=np.float64
)
_COS = np.cos(_ANGLE)
_SIN = np.sin(_ANGLE)


def _day_of_month(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day of month 1-31, days in that month) of UTC timestamps in microseconds."""
    days = (t // DAY_US).astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (days - first).astype(np.int64) + 1, length


def _circular(code: np.ndarray, n: int, t: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Per customer: (resultant length 0..1, mean angle as a fraction of the month) of days of the month."""
    dom, length = _day_of_month(t)
    c = _COS[length - 28, dom - 1]
    s = _SIN[length - 28, dom - 1]
    w = np.ones(len(t)) if weights is None else weights
    sc = _sum(code, n, c * w)
    ss = _sum(code, n, s * w)
    sw = _sum(code, n, w)
    strength = _ratio(np.sqrt(sc * sc + ss * ss), sw)
    angle = np.mod(np.arctan2(ss, sc), 2 * math.pi) / (2 * math.pi)
    return strength, np.where(sw > 0, angle, np.nan)


def _periods(code: np.ndarray, n: int, age: np.ndarray, width: int, count: int) -> np.ndarray:
    """How many of the last ``count`` periods of ``width`` days hold at least one of the rows."""
    inside = age <= width * count
    period = np.ceil(age[inside] / width).astype(np.int64) - 1
    return np.asarray(np.count_nonzero(_by(code[inside], n, period, count), axis=1), dtype=np.int64)


def _distinct_days(code: np.ndarray, n: int, t: np.ndarray, now: int, days: int) -> np.ndarray:
    """Distinct UTC calendar days with a row, among the rows of the last ``days`` days."""
    back = now // DAY_US - t // DAY_US  # 0 = the cutoff's own day
    seen = np.zeros(n * (days + 2), dtype=bool)
    seen[code * (days + 2) + back] = True
    return np.asarray(seen.reshape(n, days + 2).sum(axis=1), dtype=np.int64)


def _transactions(out: dict[str, np.ndarray], rows: _Rows, n: int, now: int) -> None:
    amount = rows.col("amount").astype(np.float64)
    count = _windowed(rows, n)
    spend = _windowed(rows, n, amount)
    for w in (7, 30, 90, 365):
        out[f"txn_count_{w}d"] = _ints(count[w])
        out[f"txn_amount_{w}d"] = spend[w]
    out["txn_amount_mean_30d"] = _ratio(spend[30], count[30])
    out["txn_amount_mean_365d"] = _ratio(spend[365], count[365])
    year = rows.age <= 365
    c365, t365, a365 = rows.code[year], rows.t[year], amount[year]
    out["txn_amount_max_365d"] = _max(c365, n, a365)
    squares = _sum(c365, n, a365 * a365)
    mean = out["txn_amount_mean_365d"]
    out["txn_amount_std_365d"] = np.sqrt(np.maximum(_ratio(squares, count[365]) - mean * mean, 0.0))
    out["txn_points_365d"] = _ints(_sum(c365, n, rows.col("points").astype(np.float64)[year]))
    first, last = _min(rows.code, n, rows.t), _max(rows.code, n, rows.t)
    out["days_since_last_txn"] = _days(last, now)
    out["days_since_first_txn"] = _days(first, now)
    span = (_max(c365, n, t365) - _min(c365, n, t365)) / DAY_US
    out["mean_gap_days_365d"] = _ratio(span, count[365] - 1)
    out["recency_gap_ratio"] = _ratio(out["days_since_last_txn"], out["mean_gap_days_365d"])
    month = rows.age <= 30
    quarter = rows.age <= 90
    out["active_days_30d"] = _distinct_days(rows.code[month], n, rows.t[month], now, 30)
    out["active_days_90d"] = _distinct_days(rows.code[quarter], n, rows.t[quarter], now, 90)
    out["active_months_12m"] = _periods(rows.code, n, rows.age, 30, 12)
    out["spend_trend_30d"] = np.log1p(spend[30]) - np.log1p((spend[120] - spend[30]) / 3)
    out["spend_trend_90d"] = np.log1p(spend[90]) - np.log1p(spend[180] - spend[90])
    out["txn_trend_30d"] = np.log1p(count[30]) - np.log1p((count[120] - count[30]) / 3)
    weekday = (t365 // DAY_US + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    out["weekend_share_365d"] = _ratio(_sum(c365, n, mask=weekday >= 5).astype(np.float64), count[365])

    types = rows.vocab("type", TXN_TYPES)
    recent = rows.age <= 90
    by_type_count = _by(rows.code[recent], n, types[recent], len(TXN_TYPES))
    by_type_amount = _by(rows.code[recent], n, types[recent], len(TXN_TYPES), amount[recent])
    by_type_year = _by(c365, n, types[year], len(TXN_TYPES))
    for i, t in enumerate(TXN_TYPES):
        out[f"{t}_count_90d"] = by_type_count[:, i].astype(np.int64)
        out[f"{t}_amount_90d"] = by_type_amount[:, i]
        out[f"{t}_share_365d"] = _ratio(by_type_year[:, i].astype(np.float64), count[365])

    cats = _by(c365, n, rows.vocab("category", CATEGORIES)[year], len(CATEGORIES), a365)
    total = cats.sum(axis=1)
    shares = np.where(total[:, None] > 0, cats / np.where(total > 0, total, 1)[:, None], np.nan)
    for i, c in enumerate(CATEGORIES):
        out[f"category_{c}_share_365d"] = shares[:, i]
    out["categories_365d"] = np.count_nonzero(cats > 0, axis=1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(shares > 0, shares * np.log(np.where(shares > 0, shares, 1)), 0.0)
    out["category_entropy_365d"] = np.where(total > 0, 0.0 - plogp.sum(axis=1), np.nan)
    channels = _by(c365, n, rows.vocab("channel", CHANNELS)[year], len(CHANNELS))
    for i, c in enumerate(CHANNELS):
        out[f"channel_{c}_share_365d"] = _ratio(channels[:, i].astype(np.float64), count[365])

    purchases = year & (types == TXN_TYPES.index("purchase"))
    strength, angle = _circular(rows.code[purchases], n, rows.t[purchases], amount[purchases])
    out["salary_day_strength_365d"] = strength
    out["salary_day_365d"] = 1 + angle * MEAN_MONTH_DAYS
    bills = types == TXN_TYPES.index("bill_payment")
    bills_year = year & bills
    out["bill_day_regularity_365d"] = _circular(rows.code[bills_year], n, rows.t[bills_year], None)[0]
    out["bill_months_12m"] = _periods(rows.code[bills], n, rows.age[bills], 30, 12)


def _tier(
    out: dict[str, np.ndarray],
    txns: _Rows,
    refunds: _Rows,
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
    spend = _sum(txns.code, n, txns.col("amount").astype(np.float64), ok)
    if refunds.n:
        original = refunds.times("original_at")
        back = (original >= start) & (original < end) & refunds.isin("type", qualifying)
        spend = spend - _sum(refunds.code, n, refunds.col("amount").astype(np.float64), back)
    spend = np.round(spend, 2)  # cents, as the ledger's Decimal arithmetic; thresholds compare exactly
    levels = np.asarray(config.tier_min_spend)
    tier = np.maximum(np.searchsorted(levels, spend, side="right") - 1, 0)
    out["tier"] = tier.astype(np.int64)
    out["tier_spend_12m"] = spend
    nxt = np.append(levels, np.nan)[np.minimum(tier + 1, len(levels))]
    out["spend_to_next_tier"] = nxt - spend
    year = refunds.age <= 365
    out["refunds_365d"] = _sum(refunds.code, n, mask=year).astype(np.int64)
    out["refund_amount_365d"] = _sum(refunds.code, n, refunds.col("amount").astype(np.float64), year)


def _points(out: dict[str, np.ndarray], moves: _Rows, lots: _Rows, n: int, now: int) -> None:
    points = moves.col("points").astype(np.int64)
    pts = points.astype(np.float64)  # bincount sums in float64: exact for integers below 2**53
    on_points = moves.isin("account", ("points",))
    balance = _ints(_sum(moves.code, n, pts, on_points))
    out["points_balance"] = balance
    out["points_debt"] = -_ints(_sum(moves.code, n, pts, moves.isin("account", ("debt",))))
    credited = on_points & (points > 0)
    for w in (30, 90, 365):
        out[f"points_earned_{w}d"] = _ints(_sum(moves.code, n, pts, credited & (moves.age <= w)))
    redeemed = on_points & moves.isin("kind", REDEEM_KINDS)
    for w in (90, 365):
        window = redeemed & (moves.age <= w)
        out[f"redemptions_{w}d"] = _sum(moves.code, n, mask=window).astype(np.int64)
        out[f"points_redeemed_{w}d"] = -_ints(_sum(moves.code, n, pts, window))
    out["points_redeemed_total"] = -_ints(_sum(moves.code, n, pts, redeemed))
    out["days_since_last_redemption"] = _days(_max(moves.code[redeemed], n, moves.t[redeemed]), now)
    out["redemption_rate_365d"] = _ratio(
        out["points_redeemed_365d"].astype(np.float64), out["points_earned_365d"].astype(np.float64)
    )
    year = on_points & (moves.age <= 365)
    out["points_expired_365d"] = -_ints(_sum(moves.code, n, pts, year & moves.isin("kind", ("expire",))))
    out["points_reversed_365d"] = -_ints(_sum(moves.code, n, pts, year & moves.isin("kind", ("reverse",))))
    activity = year & moves.isin("kind", ("activity",)) & (points > 0)
    out["activities_365d"] = _sum(moves.code, n, mask=activity).astype(np.int64)
    out["activity_points_365d"] = _ints(_sum(moves.code, n, pts, activity))
    _expiring(out, lots, np.maximum(balance, 0), n, now)


def _expiring(out: dict[str, np.ndarray], lots: _Rows, balance: np.ndarray, n: int, now: int) -> None:
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
        out[f"points_expiring_{w}d"] = _ints(_sum(code, n, kept.astype(np.float64), soon))


def _offers(out: dict[str, np.ndarray], events: _Rows, acts: _Rows, n: int, now: int) -> None:
    funnel = events.vocab("event", OFFER_FUNNEL)
    kinds = events.vocab("offer_kind", OFFER_KINDS)
    per_event = _by(events.code, n, funnel, len(OFFER_FUNNEL))
    kind_known = np.where(kinds >= 0, funnel * len(OFFER_KINDS) + kinds, -1)
    per_kind = _by(
        events.code, n, np.where(funnel >= 0, kind_known, -1), len(OFFER_FUNNEL) * len(OFFER_KINDS)
    )
    for i, e in enumerate(OFFER_FUNNEL):
        out[f"offers_{e}"] = per_event[:, i].astype(np.int64)
        for j, k in enumerate(OFFER_KINDS):
            out[f"offers_{e}_{k}"] = per_kind[:, i * len(OFFER_KINDS) + j].astype(np.int64)
    sent = funnel == OFFER_FUNNEL.index("sent")
    out["offers_sent_30d"] = _sum(events.code, n, mask=sent & (events.age <= 30)).astype(np.int64)
    out["offers_sent_90d"] = _sum(events.code, n, mask=sent & (events.age <= 90)).astype(np.int64)
    n_sent = out["offers_sent"].astype(np.float64)
    out["offer_view_rate"] = _ratio(out["offers_viewed"].astype(np.float64), n_sent)
    out["offer_completion_rate"] = _ratio(out["offers_completed"].astype(np.float64), n_sent)
    for k in OFFER_KINDS:
        out[f"offer_completion_rate_{k}"] = _ratio(
            out[f"offers_completed_{k}"].astype(np.float64), out[f"offers_sent_{k}"].astype(np.float64)
        )
    for name, event in (("", "sent"), ("_viewed", "viewed"), ("_completed", "completed")):
        rows = funnel == OFFER_FUNNEL.index(event)
        out[f"days_since_last_offer{name}"] = _days(_max(events.code[rows], n, events.t[rows]), now)
    expires = acts.times("expires_at")
    completed = acts.times("completed_at")
    out["offers_active"] = _sum(acts.code, n, mask=expires > now).astype(np.int64)
    out["activations_365d"] = _sum(acts.code, n, mask=acts.age <= 365).astype(np.int64)
    done = (completed != NAT) & (completed < now) & (completed >= now - 365 * DAY_US)
    out["activation_completions_365d"] = _sum(acts.code, n, mask=done).astype(np.int64)


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
    in the frames. Columns and dtypes are exactly ``config.catalogue`` (see ``pipelines.catalogue``).
    """
    config = config or default_config()
    cutoff = to_cutoff(as_of)
    now = cutoff.value // 1000
    ids = known_customers(frames, cutoff)
    n = len(ids)
    rows = {
        name: _Rows(getattr(frames, name), col, ids, now)
        for name, col in TIME_OF.items()
        if name != "customers"
    }
    out: dict[str, np.ndarray] = {}
    _transactions(out, rows["transactions"], n, now)
    _tier(out, rows["transactions"], rows["refunds"], n, cutoff, config)
    _points(out, rows["movements"], rows["lots"], n, now)
    _offers(out, rows["offer_events"], rows["activations"], n, now)
    first_seen = np.fmin.reduce([_min(r.code, n, r.t.astype(np.float64)) for r in rows.values()])
    _customers(out, frames.customers, ids, first_seen, cutoff)
    catalogue = config.catalogue
    names = [f.name for f in catalogue]
    assert set(out) == set(names), f"features and catalogue differ: {set(out) ^ set(names)}"
    result = pd.DataFrame({f.name: out[f.name].astype(f.dtype) for f in catalogue})
    result.insert(0, "customer_id", pd.Series(ids.to_numpy(), dtype="str"))
    result.insert(1, "as_of", pd.Series(np.full(n, now, dtype="datetime64[us]")).dt.tz_localize("UTC"))
    return result


__all__ = [
    "CATALOGUE",
    "FeatureConfig",
    "compute_features",
    "default_config",
    "known_customers",
    "to_cutoff",
]
