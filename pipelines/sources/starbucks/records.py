"""The source's conventions (epoch, sentinels, bands) and its JSON-lines records: portfolio and profile."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from loyalty_core import GENDERS
from pipelines.sources.ingest import RowProblem

EPOCH = dt.datetime(2018, 7, 27, tzinfo=dt.UTC)
FILES = ("portfolio.json", "profile.json", "transcript.json")
SOURCE = "starbucks"
CURRENCY = "USD"
ACTOR = "import:starbucks"
UNKNOWN_AGE = 118
MAX_AGE = 117
MAX_HOURS = 24 * 366 * 10  # a "time" beyond ten years after the epoch is a broken row, not a late event
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
EVENT_CHUNK = 5000


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


def parse_number(value: object) -> Decimal | None:
    """A JSON number as an exact decimal; None for anything else (strings, booleans, NaN, Infinity)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def parse_whole(value: object) -> int | None:
    """A whole number, also when written with a fraction of zero (the portfolio writes ``7.0`` days)."""
    number = parse_number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def record_object(row: int, rec: object, problems: list[RowProblem]) -> dict[str, Any] | None:
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
        rec = record_object(row, raw, problems)
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
    difficulty = parse_number(rec.get("difficulty"))
    if difficulty is None or difficulty < 0:
        raise _Reject("difficulty", f"not a number >= 0: {rec.get('difficulty')!r}")
    reward = parse_number(rec.get("reward"))
    if reward is None or reward < 0:
        raise _Reject("reward", f"not a number >= 0: {rec.get('reward')!r}")
    duration = parse_whole(rec.get("duration"))
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
        "threshold": None if informational else to_cents(difficulty),
        "value": to_cents(reward),
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
    age = parse_whole(raw_age)
    if raw_age is not None and (age is None or not (0 <= age <= MAX_AGE or age == UNKNOWN_AGE)):
        raise _Reject("age", f"not an age 0-{MAX_AGE} (or {UNKNOWN_AGE} for unknown): {raw_age!r}")
    joined = _member_since(rec.get("became_member_on"))
    if joined is None:
        raise _Reject("became_member_on", f"not a YYYYMMDD date: {rec.get('became_member_on')!r}")
    raw_income = rec.get("income")
    income = parse_number(raw_income)
    if raw_income is not None and (income is None or income < 0):
        raise _Reject("income", f"not a number >= 0: {raw_income!r}")
    known_age = None if age is None or age == UNKNOWN_AGE else age
    money = None if income is None else to_cents(income)
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
