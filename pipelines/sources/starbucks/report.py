"""The data-quality report of an import: what was read, loaded, rejected and held."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from pipelines.sources.ingest import IngestReport, RowProblem


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
