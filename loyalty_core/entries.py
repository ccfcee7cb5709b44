"""The journal entry an operation builds: its row, its double-entry lines and the lot it opens.

Operations build entries in memory and hand them to the write engine (``writer.write_entries``), which
writes each entry with its lines and lot together, so the lines of an entry always sum to zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from loyalty_core.schema import ENTRIES

# Every column but the id, which the write engine allocates (``writer.allocate_entry_ids``).
ENTRY_COLUMNS: tuple[str, ...] = tuple(c.name for c in ENTRIES.c if c.name != "id")
# A journal line to write: (account, member_id, points, dated). ``dated`` None means the entry's own date.
LineOut = tuple[str, str | None, int, dt.datetime | None]


@dataclass(slots=True)
class PendingEntry:
    """An entry with its lines and lots, written together so that its lines always sum to zero.

    Lines are dated at the entry's ``effective_at`` unless they say otherwise: a back-dated earning that
    settles debt dates the settlement at the moment it is recorded, because the debt it pays may not have
    existed at the earning's date (no line may depend on a fact dated after it). The lines of each date
    still sum to zero, so the journal balances as of every instant.
    """

    row: dict[str, Any]
    lines: list[LineOut] = field(default_factory=list)
    lot: tuple[str, int, dt.datetime, dt.datetime] | None = None  # (member, points, earned_at, expires_at)


def entry_row(
    kind: str,
    ext_id: str,
    member_id: str | None,
    *,
    status: str,
    effective_at: dt.datetime,
    now: dt.datetime,
    actor: str,
    req_hash: str,
    response: dict[str, Any],
    points: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Every column of an ``entries`` row: the write engine prepares one statement per table, not per row."""
    row: dict[str, Any] = dict.fromkeys(ENTRY_COLUMNS)
    row.update(
        kind=kind,
        ext_id=ext_id,
        member_id=member_id,
        status=status,
        effective_at=effective_at,
        recorded_at=now,
        actor=actor,
        request_hash=req_hash,
        response=response,
        points=points,
    )
    row.update(extra)
    return row
