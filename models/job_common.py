"""What the training and scoring jobs share: the ledger's time span, cutoff arithmetic, the catalogue, the
progress callback and small result helpers. Pure where it can be; the two database reads are at the top.
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
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import Entry, InvalidInput, Offer
from models.assemble import catalogue_frame
from models.training import TrainingResult
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


def ledger_span(engine: Engine) -> LedgerSpan:
    """From the posted transactions (one indexed aggregate, no extract)."""
    q = select(func.min(Entry.effective_at), func.max(Entry.effective_at)).where(
        Entry.kind == "earn", Entry.status == "posted", Entry.member_id.is_not(None)
    )
    with engine.connect() as conn:
        first, last = conn.execute(q).one()
    if first is None or last is None:
        raise InvalidInput("the ledger has no posted transactions: ingest a history first", field="ledger")
    first_ts, last_ts = (
        to_cutoff(pd.Timestamp(t).tz_localize("UTC") if t.tzinfo is None else t) for t in (first, last)
    )
    return LedgerSpan(first=first_ts, end=(last_ts.floor("D") + DAY).as_unit("us"))


def read_catalogue(engine: Engine) -> pd.DataFrame:
    """The offers table as a catalogue frame (``offer_id`` + the fields of ``upsert_offer`` + attributes)."""
    with Session(engine) as session:
        rows = list(session.scalars(select(Offer)))
    if not rows:
        raise InvalidInput("the offers catalogue is empty: ingest a history or import offers first")
    records = [
        {
            "offer_id": offer.id,
            "name": offer.name,
            "kind": offer.kind,
            "multiplier": float(offer.multiplier) if offer.multiplier is not None else 1.0,
            "bonus_points": int(offer.bonus_points or 0),
            "threshold": float(offer.threshold) if offer.threshold is not None else None,
            "categories": offer.categories,
            "txn_types": offer.txn_types,
            "channels": offer.channels,
            "duration_days": int(offer.duration_days),
            "cost": float(offer.cost or 0),
            "value": float(offer.value or 0),
            "min_tier": offer.min_tier,
            "active": bool(offer.active),
            "attributes": offer.attributes,
        }
        for offer in rows
    ]
    return catalogue_frame(pd.DataFrame.from_records(records)).sort_values("offer_id", ignore_index=True)


def use_store(tracking_uri: str | None) -> str:
    """Point MLflow's process-wide tracking and registry URIs at our store and return it.

    ``download_artifacts("models:/name/version", registry_uri=...)`` resolves the registry from MLflow's
    process-wide setting, not from its argument (MLflow 3.17, ``ModelsArtifactRepository``): without this a
    process that did not train first (``loyalty score``) would look in MLflow's own default store. Left set
    afterwards, as ``models.tracking.log_training`` does (MLflow writes them into ``os.environ``).
    """
    import mlflow
    from models.store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


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
    so ``models.tracking.log_training`` saves it inside the registered model for the service to read."""

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
