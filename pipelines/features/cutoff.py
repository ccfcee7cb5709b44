"""The cutoff instant, and which facts and customers are dated before it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from pipelines.features.frames import TS, LedgerFrames

DAY_US = 86_400_000_000
NAT = np.iinfo(np.int64).min


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


def single_as_of(features: pd.DataFrame) -> pd.Timestamp:
    if features.empty:
        raise InvalidInput("no feature rows to write", field="features")
    stamps = features["as_of"].unique()
    if len(stamps) != 1:
        raise InvalidInput(f"a snapshot has one as_of, got {len(stamps)}", field="as_of")
    return pd.Timestamp(stamps[0])
