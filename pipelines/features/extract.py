"""Read the ledger tables into ``LedgerFrames`` (the only place the feature pipeline touches the database).

Explicit columns, big tables in chunks, every source in (time, id) order so that the feature function finds
its rows already canonical and sorts nothing. Amounts become float64 in the programme's home currency at the
rules' fixed fx rates, rounded to the cent (what the ledger itself earned on); the entries keep the exact
amount and currency paid.

What is read, and why not more:
- transactions: ``entries`` of kind ``earn`` with status ``posted`` (held postings earned nothing yet);
- refunds: ``reverse`` entries of posted transactions, with the original's date (tier spend of that month);
- movements: ``lines`` of members' ``points`` and ``debt`` accounts with their entry's kind. The balance at
  a cutoff is the sum of points lines dated before it, exactly as ``statements.balance_as_of``;
- lots: when earned, when they expire and how many points they got, but NOT ``remaining``, which already
  shows spending after any past cutoff (``features._expiring`` reconstructs what a lot held then);
- offer events and activations, with their offer's kind and duration joined in; customers' attributes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
from pandas.api.types import union_categoricals
from sqlalchemy import Connection, Engine, Float, Select, cast, select
from sqlalchemy.orm import aliased

from loyalty_core import Activation, ConfigurationError, Customer, Entry, Line, Lot, Offer, OfferEvent, Rules
from pipelines.features.frames import LedgerFrames, conform

log = logging.getLogger(__name__)

Query = Select[*tuple[Any, ...]]

CHUNK_ROWS = 200_000


def _transactions(until: dt.datetime | None) -> Query:
    q = select(
        Entry.id,
        Entry.member_id.label("customer_id"),
        Entry.effective_at.label("occurred_at"),
        Entry.txn_type.label("type"),
        cast(Entry.amount, Float).label("amount"),
        Entry.currency,
        Entry.category,
        Entry.channel,
        Entry.points,
    ).where(Entry.kind == "earn", Entry.status == "posted", Entry.member_id.is_not(None))
    if until is not None:
        q = q.where(Entry.effective_at < until)
    return q.order_by(Entry.effective_at, Entry.id)


def _refunds(until: dt.datetime | None) -> Query:
    original = aliased(Entry)
    q = (
        select(
            Entry.id,
            Entry.member_id.label("customer_id"),
            Entry.effective_at.label("occurred_at"),
            original.effective_at.label("original_at"),
            Entry.txn_type.label("type"),
            cast(Entry.amount, Float).label("amount"),
            Entry.currency,
        )
        .join(original, original.id == Entry.parent_id)
        .where(Entry.kind == "reverse", original.status == "posted", Entry.member_id.is_not(None))
    )
    if until is not None:
        q = q.where(Entry.effective_at < until)
    return q.order_by(Entry.effective_at, Entry.id)


def _movements(until: dt.datetime | None) -> Query:
    q = (
        select(
            Line.id,
            Line.member_id.label("customer_id"),
            Line.effective_at,
            Entry.kind,
            Line.account,
            Line.points,
        )
        .join(Entry, Entry.id == Line.entry_id)
        .where(Line.account.in_(["points", "debt"]), Line.member_id.is_not(None))
    )
    if until is not None:
        q = q.where(Line.effective_at < until)
    return q.order_by(Line.effective_at, Line.id)


def _lots(until: dt.datetime | None) -> Query:
    q = select(Lot.id, Lot.member_id.label("customer_id"), Lot.earned_at, Lot.expires_at, Lot.points)
    if until is not None:
        q = q.where(Lot.earned_at < until)
    return q.order_by(Lot.earned_at, Lot.id)


def _offer_events(until: dt.datetime | None) -> Query:
    q = select(
        OfferEvent.id,
        OfferEvent.customer_id,
        OfferEvent.offer_id,
        Offer.kind.label("offer_kind"),
        Offer.duration_days,
        OfferEvent.event,
        OfferEvent.occurred_at,
        OfferEvent.channel,
        OfferEvent.decision_id,
    ).join(Offer, Offer.id == OfferEvent.offer_id)
    if until is not None:
        q = q.where(OfferEvent.occurred_at < until)
    return q.order_by(OfferEvent.occurred_at, OfferEvent.id)


def _activations(until: dt.datetime | None) -> Query:
    q = select(
        Activation.id,
        Activation.member_id.label("customer_id"),
        Activation.offer_id,
        Offer.kind.label("offer_kind"),
        Activation.activated_at,
        Activation.expires_at,
        Activation.completed_at,
    ).join(Offer, Offer.id == Activation.offer_id)
    if until is not None:
        q = q.where(Activation.activated_at < until)
    return q.order_by(Activation.activated_at, Activation.id)


def _customers(until: dt.datetime | None) -> Query:
    return select(
        Customer.id.label("customer_id"),
        Customer.joined_on,
        Customer.birth_year,
        Customer.gender,
        Customer.region,
        cast(Customer.income, Float).label("income"),
        Customer.income_band,
        Customer.channel,
    ).order_by(Customer.id)


def _offers(until: dt.datetime | None) -> Query:
    return select(
        Offer.id.label("offer_id"),
        Offer.kind,
        Offer.duration_days,
        cast(Offer.multiplier, Float).label("multiplier"),
        Offer.bonus_points,
        cast(Offer.threshold, Float).label("threshold"),
        cast(Offer.cost, Float).label("cost"),
        cast(Offer.value, Float).label("value"),
    ).order_by(Offer.id)


QUERIES: dict[str, Callable[[dt.datetime | None], Query]] = {
    "customers": _customers,
    "transactions": _transactions,
    "refunds": _refunds,
    "movements": _movements,
    "lots": _lots,
    "offer_events": _offer_events,
    "activations": _activations,
    "offers": _offers,
}


def _prepare(chunk: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    if "joined_on" in chunk.columns:  # a DATE: midnight UTC of that day
        chunk = chunk.assign(joined_on=pd.to_datetime(chunk["joined_on"]).dt.tz_localize("UTC"))
    if "currency" in chunk.columns:
        chunk = home_amounts(chunk, rules)
    return chunk


def _concat(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate conformed chunks; categoricals are unified (their categories differ chunk to chunk)."""
    if len(chunks) == 1:
        return chunks[0]
    cols: dict[str, pd.Series] = {}
    for c in chunks[0].columns:
        if isinstance(chunks[0][c].dtype, pd.CategoricalDtype):
            cols[c] = pd.Series(union_categoricals([chunk[c] for chunk in chunks]))
        else:
            cols[c] = pd.concat([chunk[c] for chunk in chunks], ignore_index=True)
    return pd.DataFrame(cols)


def home_amounts(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Replace ``amount`` + ``currency`` by the amount in the programme's currency (float64, cents)."""
    currency = frame["currency"].fillna(rules.currency).astype("str").str.upper()
    rates = {rules.currency: 1.0, **{code: float(rate) for code, rate in rules.fx.items()}}
    unknown = sorted(set(pd.unique(currency)) - set(rates))
    if unknown:
        raise ConfigurationError(
            f"rules {rules.version}: no fx rate for {', '.join(unknown)} (add it under [fx])"
        )
    rate = currency.map(rates).to_numpy(dtype="float64")
    amount = (frame["amount"].to_numpy(dtype="float64") * rate).round(2)
    return frame.drop(columns=["currency"]).assign(amount=amount)


def extract(
    bind: Engine | Connection,
    *,
    rules: Rules,
    until: dt.datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[str], None] | None = None,
    frames: Iterable[str] = tuple(QUERIES),
) -> LedgerFrames:
    """The ledger as ``LedgerFrames``; with ``until``, only facts dated before it (all features need).

    Activations read before ``until`` keep their ``completed_at`` even when it is later: the feature
    function looks at it only when it is before the cutoff.
    """
    wanted = set(frames)
    parts: dict[str, pd.DataFrame] = {}

    def run(connection: Connection) -> None:
        for name, query in QUERIES.items():
            if name not in wanted:
                continue
            chunks = [
                conform(_prepare(chunk, rules), name)
                for chunk in pd.read_sql(query(until), connection, chunksize=chunk_rows)
            ]
            if chunks:
                parts[name] = _concat(chunks)
            log.info("extracted %s: %d rows", name, len(parts[name]) if name in parts else 0)
            if progress is not None:
                progress(name)

    if isinstance(bind, Connection):
        run(bind)
    else:
        with bind.connect() as connection:
            run(connection)
    return LedgerFrames.from_frames(**parts)
