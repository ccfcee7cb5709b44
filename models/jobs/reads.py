"""The jobs' reads of the ledger that are not feature extracts: its time span and the offers catalogue."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import Entry, InvalidInput, Offer
from models.inputs import catalogue_frame
from models.jobs.common import DAY, LedgerSpan
from pipelines import to_cutoff


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
