"""Load parsed Starbucks data into the ledger: offers, customers, offer events and the purchases."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from loyalty_core import (
    ConfigurationError,
    Customer,
    Entry,
    OfferEvent,
    Rules,
    chunks,
    dialect_insert,
    in_transaction,
    upsert,
    upsert_offer,
    utcnow,
)
from pipelines.sources.ingest import RowProblem, ingest_frame
from pipelines.sources.starbucks.reader import read_starbucks
from pipelines.sources.starbucks.records import (
    ACTOR,
    CURRENCY,
    EPOCH,
    EVENT_CHUNK,
    ROWS_PER_STATEMENT,
    Progress,
)
from pipelines.sources.starbucks.report import StarbucksReport

CUSTOMERS = cast(Table, Customer.__table__)
EVENTS_TABLE = cast(Table, OfferEvent.__table__)
CUSTOMER_FIELDS = (
    "source",
    "joined_on",
    "birth_year",
    "gender",
    "region",
    "income",
    "income_band",
    "channel",
    "attributes",
)


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
    kinds: Counter[str] = Counter()
    for source in specs:
        spec = dict(source)
        attrs = spec["attributes"]
        spec["cost"] = rules.in_home_currency(Decimal(str(attrs["reward"])), CURRENCY)
        spec["value"] = rules.in_home_currency(Decimal(str(attrs["difficulty"])), CURRENCY)
        if spec.get("threshold") is not None:
            spec["threshold"] = rules.in_home_currency(Decimal(str(spec["threshold"])), CURRENCY)
        offer = upsert_offer(session, spec, now=now, rules=rules)
        offer.attributes = spec["attributes"]
        kinds[offer.kind] += 1
    session.flush()
    return kinds


def load_customers(
    session: Session, rows: Sequence[dict[str, Any]], *, now: dt.datetime
) -> tuple[int, int, int]:
    """Upsert customers, touching only new or changed rows: (new, updated, unchanged)."""
    new = updated = 0
    write: list[dict[str, Any]] = []
    existing = {
        r.id: r
        for part in chunks([r["id"] for r in rows], ROWS_PER_STATEMENT)
        for r in session.execute(select(CUSTOMERS).where(CUSTOMERS.c.id.in_(part)))
    }
    for row in rows:
        old = existing.get(row["id"])
        if old is not None and all(getattr(old, c) == row[c] for c in CUSTOMER_FIELDS):
            continue
        if old is None:
            new += 1
        else:
            updated += 1
        write.append({**row, "updated_at": now})
    statement = upsert(session, Customer, ["id"], [*CUSTOMER_FIELDS, "updated_at"])
    for part in chunks(write, ROWS_PER_STATEMENT):
        session.execute(statement, list(part))
    return new, updated, len(rows) - new - updated


def insert_offer_events(session: Session, frame: pd.DataFrame) -> Counter[str]:
    """Insert events whose ``ext_id`` is new (``ON CONFLICT DO NOTHING``); returns the new ones by event."""
    rows = [
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
    inserted: Counter[str] = Counter()
    if not rows:
        return inserted
    statement = (
        dialect_insert(session, EVENTS_TABLE)
        .on_conflict_do_nothing(index_elements=["ext_id"])
        .returning(EVENTS_TABLE.c.event)
    )
    for part in chunks(rows, ROWS_PER_STATEMENT):
        inserted.update(session.execute(statement, list(part)).scalars())
    return inserted


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
        new, updated, same = in_transaction(engine, partial(load_customers, rows=part, now=now))
        report.customers_new += new
        report.customers_updated += updated
        report.customers_unchanged += same
        tell("customers", len(part), len(customers))

    events = data.transcript.offer_events
    for start in range(0, len(events), EVENT_CHUNK):
        chunk = events.iloc[start : start + EVENT_CHUNK]
        report.offer_events_new += in_transaction(engine, partial(insert_offer_events, frame=chunk))
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
