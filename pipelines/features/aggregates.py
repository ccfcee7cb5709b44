"""Per-customer group-bys over the facts before a cutoff: integer codes, bincounts, windows, day-of-month
circles; never a Python loop over customers or rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipelines.features.cutoff import DAY_US, NAT, micros

# Nested windows (days) the sums are taken over: the catalogue's windows plus those the trends compare.
EDGES = (7, 30, 90, 120, 180, 365)


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


class CutoffRows:
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
        if not in_canonical_order(tk, ik):
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


def in_canonical_order(t: np.ndarray, ident: np.ndarray) -> bool:
    if len(t) < 2:
        return True
    dt_ = np.diff(t)
    return bool(np.all((dt_ > 0) | ((dt_ == 0) & (np.diff(ident) > 0))))


def per_customer_sum(
    code: np.ndarray, n: int, weights: np.ndarray | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-customer sum of ``weights`` (count when None) over the rows in ``mask``: float64 or int64."""
    if mask is not None:
        code = code[mask]
        weights = weights[mask] if weights is not None else None
    return np.bincount(code, weights=weights, minlength=n)


def per_customer_by(
    code: np.ndarray, n: int, sub: np.ndarray, k: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-customer sums split by a small code ``sub`` in [0, k): an (n, k) matrix; rows with sub < 0 drop."""
    ok = sub >= 0
    w = None if weights is None else weights[ok]
    return np.bincount(code[ok] * k + sub[ok], weights=w, minlength=n * k).reshape(n, k)


def per_customer_max(code: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Per-customer maximum (NaN for none); float64 on both sides keeps ``ufunc.at`` on its fast path."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, code, values.astype(np.float64, copy=False))
    return np.where(np.isinf(out), np.nan, out)


def per_customer_min(code: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    out = np.full(n, np.inf)
    np.minimum.at(out, code, values.astype(np.float64, copy=False))
    return np.where(np.isinf(out), np.nan, out)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def days_before(first_or_last_us: np.ndarray, now: int) -> np.ndarray:
    return (now - first_or_last_us) / DAY_US


def rounded_ints(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.rint(x), dtype=np.int64)


def window_sums(rows: CutoffRows, n: int, weights: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Sums over each window of ``EDGES`` at once: {days: per-customer sum over [cutoff - days, cutoff)}."""
    bucket = np.searchsorted(np.asarray(EDGES, dtype=np.float64), rows.age, side="left")
    cum = np.cumsum(per_customer_by(rows.code, n, bucket, len(EDGES) + 1, weights), axis=1)
    return {w: cum[:, i] for i, w in enumerate(EDGES)}


# cos and sin of each day of a month of each length, from math (exact and the same everywhere).
_ANGLE = np.array(
    [[2 * math.pi * (d - 1) / length for d in range(1, 32)] for length in range(28, 32)], dtype=np.float64
)
_COS = np.cos(_ANGLE)
_SIN = np.sin(_ANGLE)


def day_of_month(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day of month 1-31, days in that month) of UTC timestamps in microseconds."""
    days = (t // DAY_US).astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (days - first).astype(np.int64) + 1, length


def circular_day(
    code: np.ndarray, n: int, t: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """Per customer: (resultant length 0..1, mean angle as a fraction of the month) of days of the month."""
    dom, length = day_of_month(t)
    c = _COS[length - 28, dom - 1]
    s = _SIN[length - 28, dom - 1]
    w = np.ones(len(t)) if weights is None else weights
    sc = per_customer_sum(code, n, c * w)
    ss = per_customer_sum(code, n, s * w)
    sw = per_customer_sum(code, n, w)
    strength = safe_ratio(np.sqrt(sc * sc + ss * ss), sw)
    angle = np.mod(np.arctan2(ss, sc), 2 * math.pi) / (2 * math.pi)
    return strength, np.where(sw > 0, angle, np.nan)


def active_periods(code: np.ndarray, n: int, age: np.ndarray, width: int, count: int) -> np.ndarray:
    """How many of the last ``count`` periods of ``width`` days hold at least one of the rows."""
    inside = age <= width * count
    period = np.ceil(age[inside] / width).astype(np.int64) - 1
    return np.asarray(
        np.count_nonzero(per_customer_by(code[inside], n, period, count), axis=1), dtype=np.int64
    )


def distinct_days(code: np.ndarray, n: int, t: np.ndarray, now: int, days: int) -> np.ndarray:
    """Distinct UTC calendar days with a row, among the rows of the last ``days`` days."""
    back = now // DAY_US - t // DAY_US  # 0 = the cutoff's own day
    seen = np.zeros(n * (days + 2), dtype=bool)
    seen[code * (days + 2) + back] = True
    return np.asarray(seen.reshape(n, days + 2).sum(axis=1), dtype=np.int64)
