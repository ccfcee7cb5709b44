"""What the training and scoring jobs share: the ledger's time span, cutoff arithmetic, the progress
callback and small result helpers (pure; the jobs' database reads are ``models.jobs.reads``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.training import TrainingResult
from pipelines import to_cutoff

log = logging.getLogger(__name__)

# progress(stage, advance, total): the CLI turns it into one bar per stage (total None = unknown)
Progress = Callable[[str, int, int | None], None]
DAY = pd.Timedelta(days=1)


def no_progress(stage: str, advance: int, total: int | None = None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class LedgerSpan:
    """First transaction, and where the data stops: the midnight (UTC) after the last transaction, as
    ``pipelines.labels.data_end`` says (the data is taken to cover whole days)."""

    first: pd.Timestamp
    end: pd.Timestamp


def parse_date(
    value: str | dt.date | dt.datetime | pd.Timestamp | None, name: str = "as_of"
) -> pd.Timestamp | None:
    """``--as-of DATE``: that date's midnight, UTC (a timestamp is taken as it is, UTC when naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(
                f"--{name.replace('_', '-')} {value!r} is not a date (YYYY-MM-DD)", field=name
            ) from exc
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return to_cutoff(value)


def day(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


@contextmanager
def timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class ResultWithMeta(TrainingResult):
    """A ``TrainingResult`` whose scorer carries extra metadata (e.g. the churn model's BG/NBD parameters),
    so ``models.registry.tracking.log_training`` saves it inside the registered model for the service to
    read."""

    scorer_meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def wrap(cls, result: TrainingResult, meta: Mapping[str, Any]) -> ResultWithMeta:
        values = {f.name: getattr(result, f.name) for f in dataclasses.fields(TrainingResult)}
        return cls(**values, scorer_meta=dict(meta))

    def scorer(self, *, num_threads: int = 0) -> Any:
        scorer = super().scorer(num_threads=num_threads)
        scorer.meta.update(self.scorer_meta)
        return scorer


def metrics_table(metrics: Mapping[str, float], rows: Sequence[tuple[str, str]], width: int) -> list[str]:
    """The holdout table both training jobs print: one line per ``(label, metric prefix)``."""
    out = ["holdout".ljust(width) + "  ROC AUC   PR AUC  log-loss   Brier  lift@10%"]
    for label, prefix in rows:
        m = {k: metrics[prefix + k] for k in ("roc_auc", "pr_auc", "log_loss", "brier", "lift_at_10pct")}
        out.append(
            f"{label:<{width}} {m['roc_auc']:8.4f} {m['pr_auc']:8.4f} {m['log_loss']:9.4f} {m['brier']:7.4f} "
            f"{m['lift_at_10pct']:9.2f}"
        )
    return out
