"""The churn job's choice of cutoffs: the default as-of date and the monthly grid before it (pure).

Time, from the end backwards. ``as_of`` is the LAST training cutoff: its labels look ``horizon_days`` past
it and no further, so it must satisfy ``as_of + horizon <= data end`` (the midnight after the last posted
transaction); by default it is the latest such date whose label window is free of quiet days and whose
rows hold both classes (``choose_as_of``). The cutoffs are ``as_of``, ``as_of - spacing``, ...
(``n_cutoffs`` of them, none with less than ``min_history_days`` of data before it).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from loyalty_core import InvalidInput
from models.jobs.common import DAY, LedgerSpan, day
from models.jobs.params import ChurnParams
from pipelines import CHURN_ACTIVITY, LedgerFrames, churn_label_counts


def latest_complete_as_of(span: LedgerSpan, horizon_days: int) -> pd.Timestamp:
    """The latest midnight whose label window ``[as_of, as_of + horizon)`` ends within the data."""
    return (span.end - pd.Timedelta(days=horizon_days)).floor("D")


def check_as_of(as_of: pd.Timestamp, span: LedgerSpan, horizon_days: int) -> None:
    stop = as_of + pd.Timedelta(days=horizon_days)
    if stop > span.end:
        latest = latest_complete_as_of(span, horizon_days)
        raise InvalidInput(
            f"--as-of {day(as_of)}: its {horizon_days}-day label window ends {day(stop)}, after the data "
            f"(transactions up to {day(span.end - DAY)}); the latest complete cutoff is {day(latest)}",
            field="as_of",
        )
    if as_of <= span.first:
        raise InvalidInput(
            f"--as-of {day(as_of)} is before the first transaction ({day(span.first)})", field="as_of"
        )


def churn_cutoffs(
    as_of: pd.Timestamp,
    span: LedgerSpan,
    *,
    n_cutoffs: int,
    spacing_days: int,
    min_history_days: int,
) -> list[pd.Timestamp]:
    """``as_of`` and the cutoffs every ``spacing_days`` before it that have enough history, oldest first."""
    earliest = span.first.floor("D") + pd.Timedelta(days=min_history_days)
    out = [as_of - pd.Timedelta(days=spacing_days * k) for k in range(n_cutoffs)]
    out = sorted(c for c in out if c >= earliest)
    if len(out) < 3:
        raise InvalidInput(
            f"only {len(out)} cutoff(s) with {min_history_days} days of history before {day(as_of)}: "
            "out-of-time training needs 3 (fit, calibrate, validate); use a later --as-of or more history",
            field="as_of",
        )
    return out


def role_counts(counts: pd.DataFrame, grid: Sequence[pd.Timestamp]) -> dict[str, tuple[int, int]]:
    """(churned, active) rows of each role ``models.estimators.training.train`` gives the cutoffs of
    ``grid``: the last validates, the one before calibrates, the rest fit."""
    roles = {"fit": list(grid[:-2]), "calibration": [grid[-2]], "validation": [grid[-1]]}
    out: dict[str, tuple[int, int]] = {}
    for role, dates in roles.items():
        rows = counts.reindex(pd.DatetimeIndex(dates)).fillna(0)
        churned = int(rows["churned"].sum())
        out[role] = (churned, int(rows["known"].sum()) - churned)
    return out


def quiet_days(frames: LedgerFrames, span: LedgerSpan, quiet_share: float) -> pd.DatetimeIndex:
    """Days of the ledger's span with fewer than ``quiet_share`` of a usual day's active customers."""
    txns = frames.transactions
    days = txns["occurred_at"].dt.floor("D")
    active = (
        txns.loc[txns["type"].astype("str").isin(list(CHURN_ACTIVITY)).to_numpy()]
        .groupby(days, observed=True)["customer_id"]
        .nunique()
    )
    every = pd.date_range(span.first.floor("D"), span.end - DAY, freq="D")
    per_day = active.reindex(every, fill_value=0)
    usual = float(per_day[per_day > 0].median()) if (per_day > 0).any() else 0.0
    return pd.DatetimeIndex(per_day.index[per_day.to_numpy() < quiet_share * usual])


def choose_as_of(frames: LedgerFrames, span: LedgerSpan, params: ChurnParams) -> tuple[pd.Timestamp, str]:
    """The default last cutoff, and a sentence saying why it: the latest midnight whose label window is
    complete and free of quiet days (``quiet_days``: a live posting today after a history that ends
    yesterday makes today one) AND whose fit, calibration and validation rows each hold ``min_class_rows``
    churned and active customers, walking back a day at a time.

    The latest complete window is not enough: after a quiet spell (a history that stopped, then one live
    posting today) its labels are all "churned" and training could only fail. A failure names the dates
    tried and what the latest of them lacked.
    """
    horizon_days, n_cutoffs, spacing_days = params.horizon_days, params.n_cutoffs, params.spacing_days
    min_history_days, min_class_rows = params.min_history_days, params.min_class_rows
    latest = latest_complete_as_of(span, horizon_days)
    earliest = span.first.floor("D") + pd.Timedelta(days=min_history_days + spacing_days * 2)
    if latest < earliest:
        churn_cutoffs(  # says what is short
            latest, span, n_cutoffs=n_cutoffs, spacing_days=spacing_days, min_history_days=min_history_days
        )
    counts = churn_label_counts(
        frames,
        earliest - pd.Timedelta(days=spacing_days * (n_cutoffs - 1)),
        latest,
        horizon_days=horizon_days,
    )
    quiet = quiet_days(frames, span, params.quiet_share)
    first_reason = ""
    tried = 0
    candidate = latest
    while candidate >= earliest:
        tried += 1
        window = quiet[(quiet >= candidate) & (quiet < candidate + pd.Timedelta(days=horizon_days))]
        if len(window):
            first_reason = first_reason or (
                f"its label window holds {len(window)} quiet day(s) from {day(window[0])} (fewer than "
                f"{params.quiet_share:.0%} of a usual day's active customers)"
            )
            candidate -= DAY
            continue
        grid = churn_cutoffs(
            candidate, span, n_cutoffs=n_cutoffs, spacing_days=spacing_days, min_history_days=min_history_days
        )
        short = {
            role: (churned, active)
            for role, (churned, active) in role_counts(counts, grid).items()
            if min(churned, active) < min_class_rows
        }
        if not short:
            why = (
                f"{day(candidate)}, the latest whose {horizon_days}-day label window is complete"
                if candidate == latest
                else f"{day(candidate)}, walked back {tried - 1} day(s) from {day(latest)} (the latest "
                f"complete {horizon_days}-day label window) to the first free of quiet days whose rows "
                f"hold both classes; "
                f"at {day(latest)}: {first_reason}"
            )
            return candidate, why + " (give --as-of to choose)"
        if not first_reason:
            first_reason = "; ".join(
                f"{role} rows {churned:,} churned / {active:,} active"
                for role, (churned, active) in short.items()
            )
        candidate -= DAY
    raise InvalidInput(
        f"no churn cutoff works: tried every as-of from {day(latest)} back to {day(earliest)} "
        f"({tried} dates); "
        f"each needs at least {min_class_rows} churned and {min_class_rows} active customers in its fit, "
        f"calibration and validation rows; at {day(latest)}: {first_reason or 'too little history'}",
        field="as_of",
    )
