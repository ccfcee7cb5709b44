"""Load a whole bank history (the simulator's output directory) into the ledger.

Order matters, and is the reason this is more than "ingest the transactions file":

1. customers, the offers catalogue, the decision log (historical campaign assignments with their logged
   probabilities) and the offer funnel events go in first, through ``loyalty_core``'s bulk import API;
2. every ``activated`` event becomes a ledger activation with its *historical* activation time
   (``loyalty_core.import_activations``, which raises the member's ``offers_until`` horizon), so that
3. the transactions, posted in time order through ``pipelines.sources.ingest`` (the code behind
   ``POST /v1/transactions``), earn exactly what the offers active at that moment give, and the ledger marks
   an activation completed by the very transaction the simulator says completed it.

The history's ``completed`` events are not copied: completions are the ledger's to decide (it writes them to
the offer funnel itself, as it does for live traffic). ``completion_agreement`` then compares the ledger's
completions with the history's: the load is trusted only if they agree. Every write is keyed by the source's
ids (customer, offer, decision, event, transaction), so a re-run adds nothing and an interrupted load can
be started again.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

import pipelines.sources.loading as loading
from loyalty_core import (
    Activation,
    InvalidInput,
    Member,
    Offer,
    Rules,
    chunks,
    import_activations,
    import_decisions,
    import_offer_events,
    in_transaction,
    utcnow,
)
from pipelines.sources.ingest import IngestReport, ingest_frame
from pipelines.sources.loading import frame_rows, utc_datetime

log = logging.getLogger(__name__)

FILES = (
    "customers.parquet",
    "offers.parquet",
    "decisions.parquet",
    "offer_events.parquet",
    "transactions.parquet",
)
ACTIVATIONS = cast(Table, Activation.__table__)
MEMBERS = cast(Table, Member.__table__)
ROWS_PER_STATEMENT = 2000
TRANSACTION_BATCH = 50_000


@dataclass(slots=True)
class HistoryReport:
    source: str
    customers: int = 0
    offers: int = 0
    decisions: int = 0
    decisions_new: int = 0
    offer_events: int = 0
    offer_events_new: int = 0
    activations_new: int = 0
    transactions: IngestReport | None = None
    completions_expected: int = 0
    completions_in_ledger: int = 0
    completions_matching: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def completions_agree(self) -> bool:
        return self.completions_expected == self.completions_in_ledger == self.completions_matching


def _check_dir(path: Path) -> None:
    if not path.is_dir():
        raise InvalidInput(f"{path}: not a directory", field="path")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise InvalidInput(
            f"{path}: not a history directory, missing {', '.join(missing)} "
            "(write one with `loyalty simulate`, or pass a transactions CSV/Parquet file)",
            field="path",
        )


def load_customers(session: Session, frame: pd.DataFrame, *, source: str, now: dt.datetime) -> int:
    """The history's customers file into the ledger; returns how many rows it held."""
    rows = [
        {
            "id": str(r["customer_id"]),
            "source": source,
            "joined_on": pd.Timestamp(r["joined_on"]).date() if r.get("joined_on") is not None else None,
            "birth_year": int(r["birth_year"]) if r.get("birth_year") is not None else None,
            "gender": r.get("gender"),
            "region": r.get("region"),
            "income": Decimal(str(r["income"])) if r.get("income") is not None else None,
            "income_band": r.get("income_band"),
            "channel": r.get("channel"),
            "attributes": None,
        }
        for r in frame_rows(frame)
    ]
    counts = loading.load_customers(session, rows, now=now)
    return counts.new + counts.updated + counts.unchanged


def load_offers(session: Session, frame: pd.DataFrame, *, rules: Rules, now: dt.datetime) -> dict[str, Offer]:
    """The history's offers file into the catalogue, by ``offer_id``."""
    specs = [
        {**{k: v for k, v in r.items() if k != "offer_id"}, "id": str(r["offer_id"])}
        for r in frame_rows(frame)
    ]
    return loading.load_offers(session, specs, rules=rules, now=now)


def load_decisions(session: Session, frame: pd.DataFrame) -> int:
    """Historical campaign decisions with the probabilities they were made with; returns how many were new."""
    rows = [
        {
            "id": str(r["decision_id"]),
            "customer_id": str(r["customer_id"]),
            "made_at": utc_datetime(r["made_at"]),
            "policy": str(r["policy"]),
            "offer_id": r.get("offer_id"),
            "probability": float(r["probability"]),
            "channel": r.get("channel"),
        }
        for r in frame_rows(frame)
    ]
    return import_decisions(session, rows)


def load_offer_events(
    session: Session, frame: pd.DataFrame, offers: dict[str, Offer], *, now: dt.datetime
) -> tuple[int, int]:
    """Funnel events (not completions) and an activation per ``activated`` one: (new events, activations)."""
    records = [r for r in frame_rows(frame) if r["event"] != "completed"]
    unknown = sorted({str(r["offer_id"]) for r in records} - set(offers))
    if unknown:
        raise InvalidInput(
            f"offer_events refer to offers missing from offers.parquet: {', '.join(unknown[:5])}"
        )
    events: list[dict[str, Any]] = [
        {
            "ext_id": str(r["event_id"]),
            "customer_id": str(r["customer_id"]),
            "offer_id": str(r["offer_id"]),
            "event": str(r["event"]),
            "occurred_at": utc_datetime(r["occurred_at"]),
            "channel": r.get("channel"),
            "decision_id": r.get("decision_id"),
            "value": None,
        }
        for r in records
    ]
    new_events = sum(import_offer_events(session, events).values())
    activations = [
        {
            "ext_id": e["ext_id"],
            "offer_id": e["offer_id"],
            "member_id": e["customer_id"],
            "decision_id": e["decision_id"],
            "activated_at": e["occurred_at"],
        }
        for e in events
        if e["event"] == "activated"
    ]
    return new_events, import_activations(session, activations, now=now)


def _transaction_batches(path: Path) -> Iterator[tuple[int, pd.DataFrame]]:
    """The transactions file in row-group batches, as text (exact decimals), each with its first file row."""
    first = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=TRANSACTION_BATCH):
        frame = batch.to_pandas()
        frame = frame.astype({c: "string" for c in frame.columns if c != "occurred_at"})
        yield first, frame
        first += len(frame)


def completion_agreement(session: Session, events: pd.DataFrame) -> tuple[int, int, int]:
    """(history's completed events, ledger-completed activations, pairs that agree on activation and time).

    A completed event matches when the ledger completed the activation of the same customer and offer, at the
    same moment. Only the activations this history created are compared.
    """
    done = events[events["event"] == "completed"]
    expected = {
        (str(c), str(o), utc_datetime(t))
        for c, o, t in zip(done["customer_id"], done["offer_id"], done["occurred_at"], strict=True)
    }
    activated = events.loc[events["event"] == "activated", "event_id"].astype(str).tolist()
    completed: set[tuple[str, str, dt.datetime]] = set()
    for part in chunks(activated, ROWS_PER_STATEMENT):
        rows = session.execute(
            select(ACTIVATIONS.c.member_id, ACTIVATIONS.c.offer_id, ACTIVATIONS.c.completed_at).where(
                ACTIVATIONS.c.completed_at.is_not(None), ACTIVATIONS.c.ext_id.in_(part)
            )
        )
        completed.update((m, o, utc_datetime(at)) for m, o, at in rows)
    return len(expected), len(completed), len(expected & completed)


def ingest_history(
    engine: Engine,
    directory: Path,
    *,
    rules: Rules,
    actor: str = "cli:ingest",
    progress: Callable[[str, int, int | None], None] | None = None,
    workers: int = 1,
) -> HistoryReport:
    """Load the simulator's directory into the ledger; ``progress(stage, advance, total)`` drives a bar.
    ``workers``: processes posting the transactions (``pipelines.sources.ingest.parallel_plan``)."""
    _check_dir(directory)
    report = HistoryReport(source=str(directory))
    now = utcnow()

    def tick(stage: str, n: int, total: int | None = None) -> None:
        if progress is not None:
            progress(stage, n, total)

    customers = pd.read_parquet(directory / "customers.parquet")
    tick("customers", 0, len(customers))
    report.customers = in_transaction(
        engine, lambda s: load_customers(s, customers, source="simulator", now=now)
    )
    tick("customers", len(customers))

    offers_frame = pd.read_parquet(directory / "offers.parquet")
    offers = in_transaction(engine, lambda s: load_offers(s, offers_frame, rules=rules, now=now))
    report.offers = len(offers)

    decisions = pd.read_parquet(directory / "decisions.parquet")
    report.decisions = len(decisions)
    tick("decisions", 0, len(decisions))
    for start in range(0, len(decisions), 20_000):
        part = decisions.iloc[start : start + 20_000]
        report.decisions_new += in_transaction(engine, functools.partial(load_decisions, frame=part))
        tick("decisions", len(part))

    events = pd.read_parquet(directory / "offer_events.parquet").sort_values(["occurred_at", "event_id"])
    report.offer_events = len(events)
    tick("offer events", 0, len(events))
    for start in range(0, len(events), 20_000):
        part = events.iloc[start : start + 20_000]
        new_e, new_a = in_transaction(
            engine, functools.partial(load_offer_events, frame=part, offers=offers, now=now)
        )
        report.offer_events_new += new_e
        report.activations_new += new_a
        tick("offer events", len(part))

    path = directory / "transactions.parquet"
    total = pq.ParquetFile(path).metadata.num_rows
    tick("transactions", 0, total)
    merged = IngestReport(source=str(path))
    for first, frame in _transaction_batches(path):
        batch = ingest_frame(
            engine,
            frame,
            rules=rules,
            source=str(path),
            actor=actor,
            first_row=first,
            progress=lambda n: tick("transactions", n),
            workers=workers,
        )
        merged.add(batch)
    report.transactions = merged

    with Session(engine) as session:
        expected, in_ledger, matching = completion_agreement(session, events)
        report.completions_expected, report.completions_in_ledger, report.completions_matching = (
            expected,
            in_ledger,
            matching,
        )
        members = session.scalar(select(func.count()).select_from(MEMBERS)) or 0
    if not report.completions_agree:
        report.notes.append(
            f"offer completions disagree: history has {expected}, ledger completed {in_ledger}, "
            f"{matching} match (held or rejected transactions can explain a difference)"
        )
        log.warning("%s", report.notes[-1])
    manifest = directory / "manifest.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        report.notes.append(f"simulator seed {meta.get('seed')}, {members} members in the ledger")
    return report
