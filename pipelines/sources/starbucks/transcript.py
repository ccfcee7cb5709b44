"""The transcript: purchases and offer events with ids derived from the source, as frames."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from pipelines.sources.ingest import RowProblem
from pipelines.sources.starbucks.records import (
    CURRENCY,
    EPOCH,
    EVENTS,
    MAX_HOURS,
    Record,
    parse_number,
    parse_whole,
    record_object,
    to_cents,
)


@dataclass(frozen=True, slots=True)
class Transcript:
    """The transcript split into what goes to the ledger and what goes to ``offer_events``.

    ``row`` in both frames is the source line, so problems found later (by the ledger) point at the file.
    """

    transactions: pd.DataFrame  # the generic columns of pipelines.sources.ingest, plus ``row``
    offer_events: pd.DataFrame  # columns of ``offer_events`` (without ``id``), plus ``row``
    problems: list[RowProblem]
    read: Counter[str]  # rows per source event type (rows with an unknown event are only problems)


def parse_transcript(
    records: Iterable[Record],
    *,
    persons: Collection[str],
    offers: Collection[str],
    epoch: dt.datetime = EPOCH,
) -> Transcript:
    """Split and check the transcript; ``persons`` and ``offers`` are the ids that were accepted."""
    problems: list[RowProblem] = []
    read: Counter[str] = Counter()
    tx: dict[str, list[Any]] = {
        k: [] for k in ("transaction_id", "customer_id", "occurred_at", "amount", "row")
    }
    ev: dict[str, list[Any]] = {
        k: [] for k in ("ext_id", "customer_id", "offer_id", "event", "occurred_at", "value", "row")
    }
    tx_seen: Counter[tuple[str, int]] = Counter()
    ev_seen: Counter[tuple[str, str, str, int]] = Counter()
    stamps: dict[int, dt.datetime] = {}

    for row, raw in records:
        rec = record_object(row, raw, problems)
        if rec is None:
            continue
        source_event = rec.get("event")
        if source_event not in EVENTS:
            problems.append(RowProblem(row, "event", f"unknown event: {source_event!r}"))
            continue
        read[source_event] += 1
        person = rec.get("person")
        hours = parse_whole(rec.get("time"))
        value = rec.get("value")
        if not isinstance(person, str) or not person:
            problems.append(RowProblem(row, "person", f"not an id: {person!r}"))
            continue
        if hours is None or not 0 <= hours <= MAX_HOURS:
            problems.append(RowProblem(row, "time", f"not whole hours 0-{MAX_HOURS}: {rec.get('time')!r}"))
            continue
        if not isinstance(value, dict):
            problems.append(RowProblem(row, "value", f"not an object: {value!r}"))
            continue
        at = stamps.get(hours)
        if at is None:
            at = stamps[hours] = epoch + dt.timedelta(hours=hours)
        event = EVENTS[source_event]

        if event == "transaction":
            # Numbered before any other check, so fixing one bad row never renumbers its neighbours.
            n = tx_seen[(person, hours)]
            tx_seen[(person, hours)] += 1
            if "amount" not in value:
                problems.append(
                    RowProblem(row, "value", f"missing key 'amount': the keys are {sorted(value)}")
                )
                continue
            amount = parse_number(value["amount"])
            if amount is None:
                problems.append(RowProblem(row, "value.amount", f"not a number: {value['amount']!r}"))
                continue
            if amount < 0:
                problems.append(RowProblem(row, "value.amount", f"negative amount: {amount}"))
                continue
            if to_cents(amount) == 0:
                problems.append(RowProblem(row, "value.amount", f"zero amount: {amount}"))
                continue
            if person not in persons:
                problems.append(RowProblem(row, "person", f"unknown person: {person!r}"))
                continue
            tx["transaction_id"].append(f"sbx:{person}:{hours}:{n}")
            tx["customer_id"].append(person)
            tx["occurred_at"].append(at)
            tx["amount"].append(str(to_cents(amount)))
            tx["row"].append(row)
            continue

        # Offer events: "offer id" (received, viewed) or "offer_id" (completed); either spelling is accepted.
        key = "offer id" if "offer id" in value else "offer_id"
        offer = value.get(key)
        if offer is None:
            problems.append(
                RowProblem(
                    row, "value", f"missing key 'offer id' or 'offer_id': the keys are {sorted(value)}"
                )
            )
            continue
        if not isinstance(offer, str):
            problems.append(RowProblem(row, f"value.{key}", f"not an id: {offer!r}"))
            continue
        n = ev_seen[(person, offer, event, hours)]
        ev_seen[(person, offer, event, hours)] += 1
        reward: Decimal | None = None
        if event == "completed":
            if "reward" not in value:
                problems.append(
                    RowProblem(row, "value", f"missing key 'reward': the keys are {sorted(value)}")
                )
                continue
            reward = parse_number(value["reward"])
            if reward is None or reward < 0:
                problems.append(RowProblem(row, "value.reward", f"not a number >= 0: {value['reward']!r}"))
                continue
            reward = to_cents(reward)
        if offer not in offers:
            problems.append(RowProblem(row, f"value.{key}", f"unknown offer: {offer!r}"))
            continue
        if person not in persons:
            problems.append(RowProblem(row, "person", f"unknown person: {person!r}"))
            continue
        ev["ext_id"].append(f"sbx:{person}:{offer}:{event}:{hours}:{n}")
        ev["customer_id"].append(person)
        ev["offer_id"].append(offer)
        ev["event"].append(event)
        ev["occurred_at"].append(at)
        ev["value"].append(reward)
        ev["row"].append(row)

    return Transcript(_transactions_frame(tx), _events_frame(ev), problems, read)


def _utc_times(values: list[dt.datetime]) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")


def _transactions_frame(tx: dict[str, list[Any]]) -> pd.DataFrame:
    n = len(tx["row"])
    nothing = pd.array([pd.NA] * n, dtype="string")  # pd.NA, which the ingest reads as NULL (NaN is "nan")
    return pd.DataFrame(
        {
            "transaction_id": pd.array(tx["transaction_id"], dtype="string"),
            "customer_id": pd.array(tx["customer_id"], dtype="string"),
            "occurred_at": _utc_times(tx["occurred_at"]),
            "type": pd.array(["purchase"] * n, dtype="string"),
            "amount": pd.array(tx["amount"], dtype="string"),
            "category": nothing,
            "channel": nothing.copy(),
            "currency": pd.array([CURRENCY] * n, dtype="string"),
            "row": pd.array(tx["row"], dtype="int64"),
        }
    )


def _events_frame(ev: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ext_id": pd.array(ev["ext_id"], dtype="string"),
            "customer_id": pd.array(ev["customer_id"], dtype="string"),
            "offer_id": pd.array(ev["offer_id"], dtype="string"),
            "event": pd.array(ev["event"], dtype="string"),
            "occurred_at": _utc_times(ev["occurred_at"]),
            "value": pd.Series(ev["value"], dtype=object),  # Decimal, or None for sent/viewed
            "row": pd.array(ev["row"], dtype="int64"),
        }
    )
