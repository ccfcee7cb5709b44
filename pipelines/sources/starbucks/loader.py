"""Load parsed Starbucks data into the ledger: offers, customers, offer events and the purchases."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import pipelines.sources.loading as loading
from loyalty_core import (
    ConfigurationError,
    Entry,
    Rules,
    import_offer_events,
    in_transaction,
    utcnow,
)
from pipelines.sources.ingest import RowProblem, ingest_frame
from pipelines.sources.starbucks.reader import read_starbucks
from pipelines.sources.starbucks.records import (
    ACTOR,
    CURRENCY,
    EPOCH,
    EVENT_CHUNK,
    Progress,
)
from pipelines.sources.starbucks.report import StarbucksReport


def load_offers(
    session: Session, specs: Sequence[dict[str, Any]], *, rules: Rules, now: dt.datetime
) -> Counter[str]:
    """Upsert the catalogue entries and keep the source's fields beside them; returns offers by kind.

    The catalogue's amounts are in the programme's currency (the ledger compares a threshold with the
    converted purchase), so the USD difficulty and reward are converted at the rules' rate here: the
    threshold is the difficulty, the bank's cost per completion is the reward, and the value is the spend
    the offer asks for (a proxy for the margin it brings; Starbucks publishes no margin). The USD figures
    stay in ``attributes``.
    """
    converted: list[dict[str, Any]] = []
    for source in specs:
        spec = dict(source)
        attrs = spec["attributes"]
        spec["cost"] = rules.in_home_currency(Decimal(str(attrs["reward"])), CURRENCY)
        spec["value"] = rules.in_home_currency(Decimal(str(attrs["difficulty"])), CURRENCY)
        if spec.get("threshold") is not None:
            spec["threshold"] = rules.in_home_currency(Decimal(str(spec["threshold"])), CURRENCY)
        converted.append(spec)
    offers = loading.load_offers(session, converted, rules=rules, now=now)
    return Counter(offer.kind for offer in offers.values())


def offer_event_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The transcript's offer events as rows of ``loyalty_core.import_offer_events``."""
    return [
        {
            "ext_id": ext_id,
            "customer_id": customer_id,
            "offer_id": offer_id,
            "event": event,
            "occurred_at": at.to_pydatetime(),
            "channel": None,
            "decision_id": None,
            "value": value if isinstance(value, Decimal) else None,
        }
        for ext_id, customer_id, offer_id, event, at, value in zip(
            frame["ext_id"].tolist(),
            frame["customer_id"].tolist(),
            frame["offer_id"].tolist(),
            frame["event"].tolist(),
            frame["occurred_at"].tolist(),
            frame["value"].tolist(),
            strict=True,
        )
    ]


def _held_in_ledger(
    session: Session, *, examples: int = 5
) -> tuple[Counter[str], list[tuple[str, Decimal, str]]]:
    """Every Starbucks posting the fraud checks hold, this run's or an earlier one's: they must be seen."""
    rows = session.execute(
        select(Entry.ext_id, Entry.amount, Entry.reason)
        .where(Entry.kind == "earn", Entry.status == "held", Entry.ext_id.like("sbx:%"))
        .order_by(Entry.effective_at, Entry.ext_id)
    ).all()
    reasons = Counter((r.reason or "unknown").split(":")[0] for r in rows)
    return reasons, [(r.ext_id, r.amount, r.reason or "") for r in rows[:examples]]


# The ingest's generic columns, named as the transcript names them.
_TRANSCRIPT_COLUMN = {"amount": "value.amount", "customer_id": "person", "occurred_at": "time"}


def import_starbucks(
    engine: Engine,
    directory: Path | str,
    *,
    rules: Rules,
    progress: Progress | None = None,
    epoch: dt.datetime = EPOCH,
) -> StarbucksReport:
    """Load the three files: offers, customers, offer events, then the transactions through the ledger.

    Every write is keyed by an id derived from the source, so a re-run (or a run after an interruption)
    inserts nothing twice. Rows that fail a check are reported per file with row, column and reason; the
    rest goes in.
    """
    started = time.perf_counter()
    directory = Path(directory)
    rate = rules.fx.get(CURRENCY) if rules.currency != CURRENCY else Decimal(1)
    if rate is None:
        raise ConfigurationError(
            f"rules {rules.version} give no fx rate for {CURRENCY}; Starbucks amounts are in {CURRENCY} "
            "(add it under [fx])"
        )
    data = read_starbucks(directory, epoch=epoch)
    tell = progress or (lambda _step, _n, _total: None)
    report = StarbucksReport(
        source=str(directory),
        epoch=epoch,
        usd_rate=rate,
        home_currency=rules.currency,
        rows_read=data.rows_read,
        events_read=data.transcript.read,
        problems=data.problems,
        unknown_age=sum(c["birth_year"] is None for c in data.customers),
        unknown_gender=sum(c["gender"] is None for c in data.customers),
        unknown_income=sum(c["income"] is None for c in data.customers),
    )
    now = utcnow()
    report.offers = in_transaction(engine, lambda s: load_offers(s, data.offers, rules=rules, now=now))

    customers = data.customers
    for start in range(0, len(customers), EVENT_CHUNK):
        part = customers[start : start + EVENT_CHUNK]
        counts = in_transaction(engine, partial(loading.load_customers, rows=part, now=now))
        report.customers_new += counts.new
        report.customers_updated += counts.updated
        report.customers_unchanged += counts.unchanged
        tell("customers", len(part), len(customers))

    events = data.transcript.offer_events
    for start in range(0, len(events), EVENT_CHUNK):
        chunk = events.iloc[start : start + EVENT_CHUNK]
        rows = offer_event_rows(chunk)
        report.offer_events_new += in_transaction(engine, partial(import_offer_events, rows=rows))
        tell("offer events", len(chunk), len(events))
    read_events = Counter(events["event"].tolist())
    report.offer_events_present = Counter(
        {e: read_events[e] - report.offer_events_new[e] for e in ("sent", "viewed", "completed")}
    )

    transactions = data.transcript.transactions
    report.transactions = ingest_frame(
        engine,
        transactions,
        rules=rules,
        source=str(directory / "transcript.json"),
        actor=ACTOR,
        progress=lambda n: tell("transactions", n, len(transactions)),
    )
    if report.transactions.problems:
        # The ledger numbers rows by their place in the frame; report them by the transcript's line.
        lines = transactions["row"].tolist()
        report.problems["transcript.json"] = sorted(
            report.problems["transcript.json"]
            + [
                RowProblem(
                    lines[p.row - 1], _TRANSCRIPT_COLUMN.get(p.column, p.column), p.reason, p.transaction_id
                )
                for p in report.transactions.problems
            ],
            key=lambda p: p.row,
        )
    report.held_in_ledger, report.held_examples = in_transaction(engine, _held_in_ledger)
    report.seconds = time.perf_counter() - started
    return report
