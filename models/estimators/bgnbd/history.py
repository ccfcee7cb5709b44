"""A transaction log summarised as BG/NBD histories: each customer's (frequency, recency, T) at a cutoff."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput


def summarise(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    time_col: str = "occurred_at",
    as_of: dt.datetime | dt.date | pd.Timestamp,
    unit_days: float = 7,
) -> pd.DataFrame:
    """Each customer's (frequency, recency, T) as of ``as_of``, from the events strictly before it.

    A purchase is a UTC calendar *day* with at least one event: the model's Poisson process counts purchase
    occasions, and a bank customer's several card payments in one day are one occasion, not a burst of
    independent ones. So ``frequency`` is the number of distinct event days minus one; each customer's clock
    starts at 00:00 UTC of their first event day, ``recency`` is the start of their last event day on that
    clock and ``T`` is ``as_of`` on it, all in units of ``unit_days`` days (7: weeks, as in the paper).

    Customers with no event before ``as_of`` get no row: the model says nothing about people who have not
    bought yet. Filtering to qualifying event types is the caller's job. ``as_of`` must be timezone-aware
    (a plain date means 00:00 UTC of that day); the time column must hold timezone-aware timestamps.
    Returns a frame indexed by customer id (sorted), columns ``frequency`` (int64), ``recency`` and ``T``
    (float64), which ``BetaGeoNBD.fit`` takes as it is.
    """
    cutoff = _utc_cutoff(as_of)
    if not (math.isfinite(unit_days) and unit_days > 0):
        raise InvalidInput(
            f"unit_days must be a positive number of days, got {unit_days!r}", field="unit_days"
        )
    missing = [c for c in (customer_col, time_col) if c not in transactions.columns]
    if missing:
        raise InvalidInput(f"transactions lack column(s) {', '.join(missing)}", field=missing[0])
    times = transactions[time_col]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise InvalidInput(
            f"column {time_col!r} must hold timezone-aware timestamps, got dtype {times.dtype}",
            field=time_col,
        )
    for col, values in ((customer_col, transactions[customer_col]), (time_col, times)):
        bad = values.isna().to_numpy()
        if bad.any():
            row = transactions.index[int(np.argmax(bad))]
            raise InvalidInput(f"column {col!r} is empty at row {row!r}", field=col, row=row)

    before = (times < cutoff).to_numpy()
    customers = transactions[customer_col]
    if not before.any():
        return pd.DataFrame(
            {"frequency": np.zeros(0, np.int64), "recency": np.zeros(0), "T": np.zeros(0)},
            index=pd.Index(customers.iloc[:0], name=customer_col),
        )
    days = times[before].dt.tz_convert("UTC").dt.floor("D").reset_index(drop=True)
    per = days.groupby(customers[before].reset_index(drop=True), sort=True).agg(["min", "max", "nunique"])
    seconds = unit_days * 86_400.0
    out = pd.DataFrame(
        {
            "frequency": (per["nunique"] - 1).astype("int64"),
            "recency": (per["max"] - per["min"]).dt.total_seconds() / seconds,
            "T": (cutoff - per["min"]).dt.total_seconds() / seconds,
        },
        index=per.index.rename(customer_col),
    )
    return out


def _utc_cutoff(as_of: dt.datetime | dt.date | pd.Timestamp) -> pd.Timestamp:
    if isinstance(as_of, dt.datetime):  # pd.Timestamp is one too
        if as_of.tzinfo is None:
            raise InvalidInput(
                "as_of must be timezone-aware (e.g. 2025-06-01T00:00:00+00:00)",
                field="as_of",
                value=str(as_of),
            )
        return pd.Timestamp(as_of).tz_convert("UTC")
    if isinstance(as_of, dt.date):
        return pd.Timestamp(as_of.year, as_of.month, as_of.day, tz="UTC")
    raise InvalidInput(f"as_of must be a datetime or a date, got {type(as_of).__name__}", field="as_of")
