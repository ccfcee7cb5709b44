"""Read a Starbucks directory into plain values (no database), with every rejected row kept."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loyalty_core import (
    InvalidInput,
)
from pipelines.sources.ingest import RowProblem
from pipelines.sources.starbucks.records import (
    EPOCH,
    FILES,
    Record,
    iter_json_lines,
    parse_portfolio,
    parse_profile,
)
from pipelines.sources.starbucks.transcript import Transcript, parse_transcript


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
