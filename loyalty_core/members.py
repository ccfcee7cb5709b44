"""A locked member's state: the row every operation reads once under its lock and writes back once.

The columns are named here once, from the ``members`` table, for every statement that reads or writes them
(the enrol-and-lock statements, the driver-level update of a batch): a column added to the table and to
``MemberState`` then reaches all of them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loyalty_core.schema import MEMBERS


@dataclass(slots=True)
class MemberState:
    """A locked member row, changed in memory by the rules and written back once per transaction."""

    id: str
    balance: int
    debt: int
    txn_count: int
    amount_sum: Decimal
    spend: dict[str, Decimal] = field(default_factory=dict)
    recent: list[int] = field(default_factory=list)
    offers_until: dt.datetime | None = None
    dirty: bool = False


# The member's row less its enrolment time: what an operation reads under the lock.
STATE_COLUMNS: tuple[str, ...] = tuple(c.name for c in MEMBERS.c if c.name != "created_at")
# What an operation writes back; ``offers_until`` is raised only by activations, on their own.
WRITTEN_COLUMNS: tuple[str, ...] = tuple(c for c in STATE_COLUMNS if c not in ("id", "offers_until"))
# A new member's written columns, as SQL literals (the enrolment statements are plain SQL).
NEW_MEMBER_SQL: Mapping[str, str] = {
    "balance": "0",
    "debt": "0",
    "txn_count": "0",
    "amount_sum": "0",
    "spend": "'{}'",
    "recent": "'[]'",
}
# JSON columns travel as text on the driver-level paths.
JSON_COLUMNS = ("spend", "recent")


def member_state(row: Mapping[Any, Any]) -> MemberState:
    """The state from a row of ``STATE_COLUMNS``, typed by SQLAlchemy or straight from the driver.

    A driver may hand JSON back as text and timestamps in the session's time zone; both are normalised.
    """
    spend, recent = (json.loads(v) if isinstance(v, str) else v for v in (row["spend"], row["recent"]))
    until = row["offers_until"]
    return MemberState(
        row["id"],
        row["balance"],
        row["debt"],
        row["txn_count"],
        row["amount_sum"],
        {k: Decimal(v) for k, v in (spend or {}).items()},
        list(recent or ()),
        until.astimezone(dt.UTC) if until is not None else None,
    )


def written_values(m: MemberState) -> tuple[Any, ...]:
    """``WRITTEN_COLUMNS`` then ``id`` of a member, as the write engine sends them (spend as strings)."""
    values = {**{c: getattr(m, c) for c in WRITTEN_COLUMNS}, "spend": {k: str(v) for k, v in m.spend.items()}}
    return (*(values[c] for c in WRITTEN_COLUMNS), m.id)
