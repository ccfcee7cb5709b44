"""The churn job's choice of cutoffs: the default as-of date and the monthly grid before it (pure).

Time, from the end backwards. ``as_of`` is the LAST training cutoff: its labels look ``horizon_days`` past
it and no further, so it must satisfy ``as_of + horizon <= data end`` (the midnight after the last posted
transaction); by default it is the latest such date whose label window is free of quiet days and whose
rows hold both classes (``choose_as_of``). The cutoffs are ``as_of``, ``as_of - spacing``, ...
(``n_cutoffs`` of them, none with less than ``min_history_days`` of data before it).

Short histories (``cutoff_plan``): a ledger spanning less than ``short_history_days`` gets weekly cutoffs
(monthly ones would leave two or three), and its validation is purged: every training cutoff's label
window ends by the validation cutoff, ``as_of, as_of - label, as_of - label - 7 days, ...``. Without the
purge, weekly cutoffs share most of their label window with the validation's: the same customers' outcomes
are learnt and then "predicted", and the holdout flatters the trees (on CDNOW, 0.79 on the holdout for 0.76
on the next nine months) so much that it could no longer choose between them and BG/NBD honestly.

A horizon longer than complete label windows allow (``cutoff_plan``): the labels use the longest window
that still leaves the cutoffs their history (at least ``min_label_days``), and BG/NBD, which extrapolates,
carries the requested horizon into the model (its columns, its candidates; ``models.jobs.churn_candidates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class CutoffPlan:
    """How a run's cutoffs are laid out: spacing, count, the labels' window, the purge, and why."""

    spacing_days: int
    n_cutoffs: int
    label_days: int  # the training labels' window (the requested horizon when the data allows it)
    horizon_days: int  # what the user asked for: BG/NBD's columns and candidates look this far
    purge_days: int  # training cutoffs end their label windows this long before the validation cutoff
    note: str

    def lines(self) -> list[str]:
        return [self.note] if self.note else []


def cutoff_plan(
    span: LedgerSpan,
    params: ChurnParams,
    *,
    spacing_given: bool = False,
    n_given: bool = False,
) -> CutoffPlan:
    """Weekly, purged cutoffs for a short history; the label window for a horizon longer than the data.

    ``params`` is the run's resolved ``[churn]``; ``*_given``: the caller chose spacing or count (kept).
    ``InvalidInput`` when even ``min_label_days`` does not fit, or the horizon is more than
    ``max_extrapolation`` times the window that does.
    """
    horizon = params.horizon_days
    span_days = int((span.end - span.first.floor("D")) / DAY)
    short = span_days < params.short_history_days
    spacing = params.short_spacing_days if short and not spacing_given else params.spacing_days
    n_cutoffs = params.short_n_cutoffs if short and not n_given else params.n_cutoffs
    room = span_days - params.min_history_days
    # purged: as_of + L <= end and as_of - L - spacing * (k - 2) >= first + history for a grid of k cutoffs.
    # A horizon that fits with a fit and a calibration cutoff keeps its window; a longer one gets the
    # window the whole grid fits with (on CDNOW, 11 weekly training cutoffs with 71-day labels rank the
    # next 273 days better than 3 with 99), or, when that is under min_label_days, the 3-cutoff one.
    longest = room - 2 * spacing
    if short:
        three = (room - spacing) // 2
        full = (room - spacing * (n_cutoffs - 2)) // 2
        longest = three if horizon <= three or full < params.min_label_days else full
    notes = []
    if short:
        notes.append(
            f"short history ({span_days} days < {params.short_history_days}): cutoffs every {spacing} days, "
            "validation purged (training label windows end by its cutoff)"
        )
    label = horizon
    if horizon > longest:
        label = longest
        if label < params.min_label_days:
            raise InvalidInput(
                f"--horizon-days {horizon}: {span_days} days of data leave label windows of at most "
                f"{max(label, 0)} days after {params.min_history_days} days of history and the cutoffs' "
                f"spacing, fewer than min_label_days ({params.min_label_days}); give more history, a "
                "shorter horizon, or lower [churn] min_history_days",
                field="horizon_days",
            )
        if horizon > params.max_extrapolation * label:
            raise InvalidInput(
                f"--horizon-days {horizon} is more than {params.max_extrapolation:g} times the longest "
                f"complete label window the data allows ({label} days of {span_days}): too far to "
                "extrapolate; ask for a horizon of at most "
                f"{int(params.max_extrapolation * label)} days or give more history",
                field="horizon_days",
            )
        notes.append(
            f"horizon {horizon} days > the longest complete label window ({label} days): labels over "
            f"{label} days, BG/NBD's columns and candidates extrapolate to {horizon} days"
        )
    return CutoffPlan(
        spacing_days=spacing,
        n_cutoffs=n_cutoffs,
        label_days=label,
        horizon_days=horizon,
        purge_days=label if short else 0,
        note="; ".join(notes),
    )


def churn_cutoffs(
    as_of: pd.Timestamp,
    span: LedgerSpan,
    *,
    n_cutoffs: int,
    spacing_days: int,
    min_history_days: int,
    purge_days: int = 0,
) -> list[pd.Timestamp]:
    """``as_of`` and the cutoffs every ``spacing_days`` before it that have enough history, oldest first;
    with ``purge_days``, the ones before ``as_of`` start that many days before it (``cutoff_plan``)."""
    earliest = span.first.floor("D") + pd.Timedelta(days=min_history_days)
    gap = pd.Timedelta(days=purge_days)
    steps = range(n_cutoffs - 1) if purge_days else range(1, n_cutoffs)
    before = [as_of - gap - pd.Timedelta(days=spacing_days * k) for k in steps]
    out = sorted(c for c in (as_of, *before) if c >= earliest)
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


def choose_as_of(
    frames: LedgerFrames, span: LedgerSpan, params: ChurnParams, purge_days: int = 0
) -> tuple[pd.Timestamp, str]:
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
    earliest = span.first.floor("D") + pd.Timedelta(
        days=min_history_days + (spacing_days + purge_days if purge_days else spacing_days * 2)
    )
    grid_of = {
        "n_cutoffs": n_cutoffs,
        "spacing_days": spacing_days,
        "min_history_days": min_history_days,
        "purge_days": purge_days,
    }
    if latest < earliest:
        churn_cutoffs(latest, span, **grid_of)  # says what is short
    counts = churn_label_counts(
        frames,
        earliest - pd.Timedelta(days=purge_days + spacing_days * (n_cutoffs - 1)),
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
        grid = churn_cutoffs(candidate, span, **grid_of)
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
