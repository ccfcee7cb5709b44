"""The simulation's configuration, the model's fixed constants and its calendar.

Times are integer seconds from the first instant of the history; ``NEVER`` stands for "no churn within
the history". ``pipelines.sources.simulator.writer`` says in which order the pieces are drawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loyalty_core import InvalidInput
from pipelines.sources.simulator.world import WEEKDAY_FACTOR

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
