"""The one bulk API through which importers write the ledger's non-posting tables (customers, offers, events).

An importer (the simulator's history, Starbucks, a bank's own files) reads and checks its source, then hands
plain rows to these functions; it never writes a ledger table itself. That keeps the ledger's own
invariants here: an activation raises ``members.offers_until``, the cache the posting path trusts to skip
the activation lookup, and a re-run of the same import inserts nothing twice (rows are keyed by the
source's ids). Postings go through ``post_transactions`` or the bulk posting path, not through here.

Rows are mappings of column name to a Python value (``None`` for missing); the caller converts frames.
Every function works inside the caller's transaction and commits nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from loyalty_core.decisions.record import decision_rows
from loyalty_core.errors import InvalidInput
from loyalty_core.locks import lock_members
from loyalty_core.offers import raise_offers_until, upsert_offer
from loyalty_core.rules import Rules
from loyalty_core.schema import ACTIVATIONS, OFFER_EVENTS, Customer, Decision, Offer
from loyalty_core.sql import chunks, dialect_insert, upsert

# Rows per INSERT: far below SQLite's 32,766 bound parameters for the widest of these tables.
ROWS_PER_STATEMENT = 2000

CUSTOMERS = cast(Table, Customer.__table__)
DECISIONS = cast(Table, Decision.__table__)
OFFERS = cast(Table, Offer.__table__)

# What an importer says about a customer: every column but the key and the time of our last write.
CUSTOMER_FIELDS: tuple[str, ...] = tuple(c.name for c in CUSTOMERS.c if c.name not in ("id", "updated_at"))
EVENT_FIELDS: tuple[str, ...] = tuple(c.name for c in OFFER_EVENTS.c if c.name != "id")
DECISION_FIELDS = ("id", "customer_id", "made_at", "policy", "offer_id", "probability", "channel")


@dataclass(frozen=True, slots=True)
class CustomerCounts:
    """What ``import_customers`` did, so an importer can report a re-run that changed nothing as such."""

    new: int
    updated: int
    unchanged: int


def _complete(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {f: row.get(f) for f in fields}


def _insert_new(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    """Insert the rows whose ``key`` is new; returns each inserted row's ``key``, so a re-run reports zero."""
    if not rows:
        return []
    statement = (
        dialect_insert(session, table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    )
    inserted: list[Any] = []
    for part in chunks(rows, ROWS_PER_STATEMENT):
        inserted.extend(session.execute(statement, list(part)).scalars())
    return inserted


def import_customers(
    session: Session, rows: Sequence[Mapping[str, Any]], *, now: dt.datetime
) -> CustomerCounts:
    """Upsert customers by ``id``, writing only new or changed ones (``updated_at`` says when one changed).

    A row names ``id`` and any of ``CUSTOMER_FIELDS``; a field it leaves out is NULL.
    """
    full = [{"id": r["id"], **_complete(r, CUSTOMER_FIELDS)} for r in rows]
    existing = {
        r.id: r
        for part in chunks([r["id"] for r in full], ROWS_PER_STATEMENT)
        for r in session.execute(select(CUSTOMERS).where(CUSTOMERS.c.id.in_(part)))
    }
    new = updated = 0
    write: list[dict[str, Any]] = []
    for row in full:
        old = existing.get(row["id"])
        if old is not None and all(getattr(old, c) == row[c] for c in CUSTOMER_FIELDS):
            continue
        if old is None:
            new += 1
        else:
            updated += 1
        write.append({**row, "updated_at": now})
    statement = upsert(session, CUSTOMERS, ["id"], [*CUSTOMER_FIELDS, "updated_at"])
    for part in chunks(write, ROWS_PER_STATEMENT):
        session.execute(statement, list(part))
    return CustomerCounts(new=new, updated=updated, unchanged=len(full) - new - updated)


def import_offers(
    session: Session, specs: Sequence[Mapping[str, Any]], *, rules: Rules, now: dt.datetime
) -> dict[str, Offer]:
    """Create or replace catalogue offers (each checked as ``upsert_offer`` checks the API's); by id.

    A spec's ``attributes`` (what the source says beyond our columns) are kept with the offer when given.
    """
    offers: dict[str, Offer] = {}
    for spec in specs:
        offer = upsert_offer(session, dict(spec), now=now, rules=rules)
        if "attributes" in spec:
            offer.attributes = spec["attributes"]
        offers[offer.id] = offer
    session.flush()
    return offers


def import_offer_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """Insert funnel events whose ``ext_id`` is new; returns the new ones counted by ``event``.

    A row names ``ext_id``, ``customer_id``, ``offer_id``, ``event``, ``occurred_at`` and optionally
    ``channel``, ``decision_id``, ``value``. An activation is not implied: see ``import_activations``.
    """
    full = [_complete(r, EVENT_FIELDS) for r in rows]
    by_ext = {r["ext_id"]: r["event"] for r in full}
    return Counter(by_ext[ext] for ext in _insert_new(session, OFFER_EVENTS, full, "ext_id"))


def import_activations(session: Session, rows: Sequence[Mapping[str, Any]], *, now: dt.datetime) -> int:
    """Record customers' past activations of offers; returns how many were new.

    A row names ``ext_id``, ``offer_id``, ``member_id``, ``activated_at`` and optionally ``decision_id``;
    the activation runs for the offer's ``duration_days``. Members are enrolled if new, and each member's
    ``offers_until`` is raised to their latest expiry: postings look activations up only for members whose
    offer horizon is still ahead of them, so an activation without it would never count.
    """
    if not rows:
        return 0
    wanted = sorted({str(r["offer_id"]) for r in rows})
    durations: dict[str, int] = {}
    for part in chunks(wanted, ROWS_PER_STATEMENT):
        q = select(OFFERS.c.id, OFFERS.c.duration_days).where(OFFERS.c.id.in_(part))
        durations.update((oid, days) for oid, days in session.execute(q))
    unknown = [o for o in wanted if o not in durations]
    if unknown:
        raise InvalidInput(f"activations refer to offers not in the catalogue: {', '.join(unknown[:5])}")
    activations = [
        {
            "ext_id": r["ext_id"],
            "offer_id": r["offer_id"],
            "member_id": r["member_id"],
            "decision_id": r.get("decision_id"),
            "activated_at": r["activated_at"],
            "expires_at": r["activated_at"] + dt.timedelta(days=durations[str(r["offer_id"])]),
            "completed_at": None,
        }
        for r in rows
    ]
    new = len(_insert_new(session, ACTIVATIONS, activations, "ext_id"))
    horizon: dict[str, dt.datetime] = {}
    for a in activations:
        m = a["member_id"]
        horizon[m] = max(horizon.get(m, a["expires_at"]), a["expires_at"])
    raise_offers_until(session, lock_members(session, horizon, create=True, now=now), horizon)
    return new


def import_decisions(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record a source's past campaign decisions (each was served); returns how many were new.

    A row names ``id``, ``customer_id``, ``made_at``, ``policy``, ``probability`` and optionally
    ``offer_id`` and ``channel``: the probability is what off-policy evaluation weighs the decision by.
    """
    full = decision_rows([{**_complete(r, DECISION_FIELDS), "served": True} for r in rows])
    return len(_insert_new(session, DECISIONS, full, "id"))
