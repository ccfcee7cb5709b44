"""Import the Starbucks Rewards capstone data (``portfolio.json``, ``profile.json``, ``transcript.json``).

The data has no calendar: ``time`` counts hours since the start of a ~30-day test, ages are as of that start,
and ``118`` stands for "age unknown". We anchor it to a fixed, documented epoch, **2018-07-27T00:00Z**, the
day after the last ``became_member_on`` (2018-07-26), so every customer joined before the test begins,
``time`` ``t`` is ``EPOCH + t hours``, and ``birth_year = 2018 - age``. A fixed epoch (rather than "now")
keeps every derived id, timestamp and birth year the same on every run, which is what makes the import
idempotent.

Mappings (see the README section "Starbucks data"):

- portfolio -> offers: ``informational`` stays informational; ``bogo`` and ``discount`` become ``cashback``
  offers (the reward is paid outside the points ledger) with ``threshold = difficulty``, ``cost = reward``,
  ``value = difficulty`` (converted to the programme's currency at the rules' rate, see ``load_offers``),
  ``duration_days = duration``; the source fields are kept in ``offers.attributes`` (amounts in USD).
- profile -> customers: sentinels and nulls become NULL (never a sentinel), income is USD per year, and
  ``income_band`` uses the simulator's labels with USD cut points (see ``INCOME_BANDS``).
- transcript -> ``transaction`` rows are USD purchases posted through ``pipelines.ingest.ingest_frame`` (the
  code behind ``POST /v1/transactions``; they earn at the rules' fixed USD rate and the entry keeps the USD
  amount); ``offer received/viewed/completed`` become ``offer_events`` ``sent/viewed/completed``, a
  completion's ``value`` being its reward in USD.

Ids are derived from the source so that a re-run inserts nothing twice: a transaction is
``sbx:<person>:<hour>:<n>`` and an offer event ``sbx:<person>:<offer>:<event>:<hour>:<n>``, where ``n``
counts earlier rows of the file with the same key (the transcript repeats 397 offer events exactly; they
are kept, as the source counts them). Row numbers in problem reports are line numbers of the file (the
transcript has blank lines; they are skipped and not counted).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
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
    InvalidInput,
    OfferEvent,
    Rules,
    chunks,
    dialect_insert,
    in_transaction,
    upsert,
    upsert_offer,
    utcnow,
)
from pipelines.ingest import IngestReport, RowProblem, ingest_frame

EPOCH = dt.datetime(2018, 7, 27, tzinfo=dt.UTC)
FILES = ("portfolio.json", "profile.json", "transcript.json")
SOURCE = "starbucks"
CURRENCY = "USD"
ACTOR = "import:starbucks"
UNKNOWN_AGE = 118
MAX_AGE = 117
MAX_HOURS = 24 * 366 * 10  # a "time" beyond ten years after the epoch is a broken row, not a late event
GENDERS = ("F", "M", "O")
OFFER_TYPES = ("bogo", "discount", "informational")
# Source event -> our funnel event ("transaction" goes to the ledger instead).
EVENTS = {
    "transaction": "transaction",
    "offer received": "sent",
    "offer viewed": "viewed",
    "offer completed": "completed",
}
# The simulator's band labels, cut at these yearly USD incomes (the data spans 30,000 to 120,000).
INCOME_BANDS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(50_000), "low"),
    (Decimal(75_000), "middle"),
    (Decimal(100_000), "upper_middle"),
)
TOP_BAND = "high"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CENT = Decimal("0.01")
ROWS_PER_STATEMENT = 2000
EVENT_CHUNK = 5000

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

Record = tuple[int, Any]  # (line number in the file, decoded JSON value)
Progress = Callable[[str, int, int], None]  # (step, rows just done, rows in the step)


# --- reading and parsing (no database) --------------------------------------------------------------------


def iter_json_lines(path: Path, problems: list[RowProblem]) -> Iterator[Record]:
    """Decode a JSON Lines file lazily, numbers with a fraction as ``Decimal`` exactly as written.

    ``0.83`` stays ``Decimal("0.83")``, never the binary float ``0.82999...``, so amounts reach the ledger
    exact. A line that is not JSON is appended to ``problems`` (a problem of that line, not of the file).
    Lazily, because the decoded transcript would take ten times the file's size in memory.
    """
    decoder = json.JSONDecoder(parse_float=Decimal)
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = decoder.decode(line)
            except json.JSONDecodeError as exc:
                problems.append(RowProblem(line_no, "record", f"not valid JSON: {exc.msg}"))
                continue
            yield line_no, value


def _number(value: object) -> Decimal | None:
    """A JSON number as an exact decimal; None for anything else (strings, booleans, NaN, Infinity)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def _whole(value: object) -> int | None:
    """A whole number, also when written with a fraction of zero (the portfolio writes ``7.0`` days)."""
    number = _number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _object(row: int, rec: object, problems: list[RowProblem]) -> dict[str, Any] | None:
    if isinstance(rec, dict):
        return rec
    problems.append(RowProblem(row, "record", f"not a JSON object: {type(rec).__name__}"))
    return None


class _Reject(Exception):
    """The first thing wrong with a record: its column and why (the record is skipped and reported)."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _each_object(
    records: Iterable[Record], problems: list[RowProblem], make: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row, raw in records:
        rec = _object(row, raw, problems)
        if rec is None:
            continue
        try:
            out.append(make(rec))
        except _Reject as exc:
            problems.append(RowProblem(row, exc.column, exc.reason))
    return out


def _new_id(rec: dict[str, Any], seen: set[str], what: str) -> str:
    value = rec.get("id")
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise _Reject("id", f"not an id: {value!r}")
    if value in seen:
        raise _Reject("id", f"duplicate {what} id: {value!r}")
    seen.add(value)
    return value


def _offer_spec(rec: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    oid = _new_id(rec, seen, "offer")
    offer_type = rec.get("offer_type")
    if offer_type not in OFFER_TYPES:
        raise _Reject("offer_type", f"not one of {', '.join(OFFER_TYPES)}: {offer_type!r}")
    difficulty = _number(rec.get("difficulty"))
    if difficulty is None or difficulty < 0:
        raise _Reject("difficulty", f"not a number >= 0: {rec.get('difficulty')!r}")
    reward = _number(rec.get("reward"))
    if reward is None or reward < 0:
        raise _Reject("reward", f"not a number >= 0: {rec.get('reward')!r}")
    duration = _whole(rec.get("duration"))
    if duration is None or not 1 <= duration <= 366:
        raise _Reject("duration", f"not a whole number of days 1-366: {rec.get('duration')!r}")
    channels = rec.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        raise _Reject("channels", f"not a list of channel names: {channels!r}")
    informational = offer_type == "informational"
    name = (
        f"Starbucks informational, {duration} days"
        if informational
        else f"Starbucks {offer_type}: spend {difficulty} USD, reward {reward} USD, {duration} days"
    )
    return {
        "id": oid,
        "name": name,
        "kind": "informational" if informational else "cashback",
        "threshold": None if informational else _cents(difficulty),
        "value": _cents(reward),
        "duration_days": duration,
        "channels": list(channels),
        "attributes": {
            "source": SOURCE,
            "offer_type": offer_type,
            "difficulty": _json_number(difficulty),
            "reward": _json_number(reward),
            "duration": duration,
            "channels": list(channels),
            "currency": CURRENCY,
        },
    }


def parse_portfolio(records: Iterable[Record]) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """Offer specs for ``loyalty_core.offers.upsert_offer``, plus ``attributes`` with the source's fields."""
    problems: list[RowProblem] = []
    seen: set[str] = set()
    specs = _each_object(records, problems, lambda rec: _offer_spec(rec, seen))
    return specs, problems


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def income_band(income: Decimal | None) -> str | None:
    """The simulator's band labels for a yearly USD income (NULL stays NULL)."""
    if income is None:
        return None
    for upper, label in INCOME_BANDS:
        if income < upper:
            return label
    return TOP_BAND


def _member_since(value: object) -> dt.date | None:
    """``became_member_on`` is ``YYYYMMDD``, an int in the README and a string in the file: take both."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _customer_row(rec: dict[str, Any], seen: set[str], epoch: dt.datetime) -> dict[str, Any]:
    cid = _new_id(rec, seen, "customer")
    gender = rec.get("gender")
    if gender is not None and gender not in GENDERS:
        raise _Reject("gender", f"not one of {', '.join(GENDERS)} or null: {gender!r}")
    raw_age = rec.get("age")
    age = _whole(raw_age)
    if raw_age is not None and (age is None or not (0 <= age <= MAX_AGE or age == UNKNOWN_AGE)):
        raise _Reject("age", f"not an age 0-{MAX_AGE} (or {UNKNOWN_AGE} for unknown): {raw_age!r}")
    joined = _member_since(rec.get("became_member_on"))
    if joined is None:
        raise _Reject("became_member_on", f"not a YYYYMMDD date: {rec.get('became_member_on')!r}")
    raw_income = rec.get("income")
    income = _number(raw_income)
    if raw_income is not None and (income is None or income < 0):
        raise _Reject("income", f"not a number >= 0: {raw_income!r}")
    known_age = None if age is None or age == UNKNOWN_AGE else age
    money = None if income is None else _cents(income)
    return {
        "id": cid,
        "source": SOURCE,
        "joined_on": joined,
        "birth_year": None if known_age is None else epoch.year - known_age,
        "gender": gender,
        "region": None,
        "income": money,
        "income_band": income_band(money),
        "channel": None,
        # Age as the source stated it at the epoch; income is yearly, in USD (the simulator's is monthly
        # RUB), so models comparing sources must know.
        "attributes": {"age": known_age, "income_currency": CURRENCY, "income_period": "year"},
    }


def parse_profile(
    records: Iterable[Record], *, epoch: dt.datetime = EPOCH
) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """Rows of the ``customers`` table (without ``updated_at``); unknowns are None, never 118."""
    problems: list[RowProblem] = []
    seen: set[str] = set()
    rows = _each_object(records, problems, lambda rec: _customer_row(rec, seen, epoch))
    return rows, problems


@dataclass(frozen=True, slots=True)
class Transcript:
    """The transcript split into what goes to the ledger and what goes to ``offer_events``.

    ``row`` in both frames is the source line, so problems found later (by the ledger) point at the file.
    """

    transactions: pd.DataFrame  # the generic columns of pipelines.ingest, plus ``row``
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
        rec = _object(row, raw, problems)
        if rec is None:
            continue
        source_event = rec.get("event")
        if source_event not in EVENTS:
            problems.append(RowProblem(row, "event", f"unknown event: {source_event!r}"))
            continue
        read[source_event] += 1
        person = rec.get("person")
        hours = _whole(rec.get("time"))
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
            amount = _number(value["amount"])
            if amount is None:
                problems.append(RowProblem(row, "value.amount", f"not a number: {value['amount']!r}"))
                continue
            if amount < 0:
                problems.append(RowProblem(row, "value.amount", f"negative amount: {amount}"))
                continue
            if _cents(amount) == 0:
                problems.append(RowProblem(row, "value.amount", f"zero amount: {amount}"))
                continue
            if person not in persons:
                problems.append(RowProblem(row, "person", f"unknown person: {person!r}"))
                continue
            tx["transaction_id"].append(f"sbx:{person}:{hours}:{n}")
            tx["customer_id"].append(person)
            tx["occurred_at"].append(at)
            tx["amount"].append(str(_cents(amount)))
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
            reward = _number(value["reward"])
            if reward is None or reward < 0:
                problems.append(RowProblem(row, "value.reward", f"not a number >= 0: {value['reward']!r}"))
                continue
            reward = _cents(reward)
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


@dataclass(frozen=True, slots=True)
class StarbucksData:
    """The three files parsed and checked, ready to load."""

    offers: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    transcript: Transcript
    rows_read: dict[str, int]
    problems: dict[str, list[RowProblem]]


def check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: not a directory", field="path")
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise InvalidInput(
            f"{directory}: not a Starbucks directory, missing {', '.join(missing)}",
            field="path",
        )


def read_starbucks(directory: Path, *, epoch: dt.datetime = EPOCH) -> StarbucksData:
    """Read and check the three files; the transcript is checked against the offers and persons accepted."""
    check_directory(directory)
    bad_json: dict[str, list[RowProblem]] = {name: [] for name in FILES}
    decoded: Counter[str] = Counter()

    def records(name: str) -> Iterator[Record]:
        for record in iter_json_lines(directory / name, bad_json[name]):
            decoded[name] += 1
            yield record

    offers, offer_problems = parse_portfolio(records("portfolio.json"))
    customers, customer_problems = parse_profile(records("profile.json"), epoch=epoch)
    transcript = parse_transcript(
        records("transcript.json"),
        persons={c["id"] for c in customers},
        offers={o["id"] for o in offers},
        epoch=epoch,
    )
    found = {"portfolio.json": offer_problems, "profile.json": customer_problems}
    found["transcript.json"] = transcript.problems
    problems = {name: sorted(bad_json[name] + found[name], key=lambda p: p.row) for name in FILES}
    rows_read = {name: decoded[name] + len(bad_json[name]) for name in FILES}
    return StarbucksData(offers, customers, transcript, rows_read, problems)


# --- loading -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class StarbucksReport:
    """What an import read, loaded, rejected and left for review: the data-quality report."""

    source: str
    epoch: dt.datetime
    usd_rate: Decimal  # programme-currency units per USD, from the rules' [fx]
    home_currency: str
    rows_read: dict[str, int] = field(default_factory=dict)
    events_read: Counter[str] = field(default_factory=Counter)  # transcript rows per source event type
    problems: dict[str, list[RowProblem]] = field(default_factory=dict)
    offers: Counter[str] = field(default_factory=Counter)  # offers upserted, by kind
    customers_new: int = 0
    customers_updated: int = 0
    customers_unchanged: int = 0
    unknown_age: int = 0
    unknown_gender: int = 0
    unknown_income: int = 0
    offer_events_new: Counter[str] = field(default_factory=Counter)
    offer_events_present: Counter[str] = field(default_factory=Counter)
    transactions: IngestReport | None = None
    # Every Starbucks posting the ledger holds for review (this run's and earlier ones'), by reason.
    held_in_ledger: Counter[str] = field(default_factory=Counter)
    held_examples: list[tuple[str, Decimal, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(len(p) for p in self.problems.values())

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(
            f"{name}: {p.column}: {p.reason.split(':')[0]}"
            for name, found in self.problems.items()
            for p in found
        )

    def lines(self, *, max_problems: int = 10) -> list[str]:
        """The report as text, for the command line and logs."""
        tx = self.transactions or IngestReport(source="transcript.json")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.offers.items()))
        out = [
            f"Starbucks import from {self.source}: epoch {self.epoch.isoformat()}, "
            f"USD earns at {self.usd_rate} {self.home_currency}/USD",
            "rows read: " + ", ".join(f"{name} {n}" for name, n in self.rows_read.items()),
            "transcript rows: " + ", ".join(f"{k} {n}" for k, n in self.events_read.most_common()),
            f"offers: {sum(self.offers.values())} loaded ({kinds})",
            f"customers: {self.customers_new} new, {self.customers_updated} updated, "
            f"{self.customers_unchanged} unchanged; unknown age {self.unknown_age}, "
            f"gender {self.unknown_gender}, income {self.unknown_income}",
            "offer events: "
            + ", ".join(
                f"{e} {self.offer_events_new[e]} new + {self.offer_events_present[e]} already present"
                for e in ("sent", "viewed", "completed")
            ),
            f"transactions: {tx.posted} posted ({tx.points} points), {tx.held} held for review, "
            f"{tx.already_present} already present, {tx.rejected} rejected by the ledger",
            f"held for review in the ledger (all Starbucks postings): {sum(self.held_in_ledger.values())}",
        ]
        out += [f"  held {n:>8}  {reason}" for reason, n in self.held_in_ledger.most_common()]
        out += [f"  e.g. {tid} {amount} USD: {why}" for tid, amount, why in self.held_examples]
        out.append(f"rejected rows: {self.rejected}")
        out += [f"  rejected {n:>8}  {reason}" for reason, n in self.rejected_by_reason().most_common()]
        shown = [(name, p) for name, found in self.problems.items() for p in found][:max_problems]
        out += [f"  {name} row {p.row}, column {p.column}: {p.reason}" for name, p in shown]
        if self.rejected > len(shown):
            out.append(f"  ... and {self.rejected - len(shown)} more")
        out.append(f"took {self.seconds:.1f} s")
        return out


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
