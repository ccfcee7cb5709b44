"""The one loader of customers and offers for every source, over ``loyalty_core``'s bulk import API.

A source (the simulator's history, Starbucks, a bank's own files) turns its records into plain rows; this
module hands them to the ledger, which owns every write to its tables, so no source keeps a loader of its own
that could drift from another's (which fields a customer update compares, how an offer's lists are typed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd
from sqlalchemy.orm import Session

from loyalty_core import CustomerCounts, Offer, Rules, import_customers, import_offers

LISTED = ("categories", "txn_types", "channels")  # offer fields that are lists of names


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts with None for missing values (pandas gives NA/NaN/NaT; the database wants NULL)."""
    out = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return cast(list[dict[str, Any]], out)


def utc_datetime(value: Any) -> dt.datetime:
    """A timezone-aware UTC datetime from whatever a file holds (a naive time is taken as UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out: dt.datetime = ts.to_pydatetime()
    return out


def load_customers(
    session: Session, rows: Sequence[Mapping[str, Any]], *, now: dt.datetime
) -> CustomerCounts:
    """Upsert customers by ``id``, writing only new or changed ones (``loyalty_core.import_customers``)."""
    return import_customers(session, rows, now=now)


def load_offers(
    session: Session, specs: Sequence[Mapping[str, Any]], *, rules: Rules, now: dt.datetime
) -> dict[str, Offer]:
    """Create or replace catalogue offers by ``id``; list fields become lists of text and the duration an
    int, whatever container or number type the source's reader produced."""
    typed: list[dict[str, Any]] = []
    for source in specs:
        spec = dict(source)
        for listed in LISTED:
            if spec.get(listed) is not None:
                spec[listed] = [str(x) for x in spec[listed]]
        spec["duration_days"] = int(spec["duration_days"])
        typed.append(spec)
    return import_offers(session, typed, rules=rules, now=now)
