"""Points for what is not a transaction: social activity, referrals, surveys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.clock import utcnow
from loyalty_core.entries import PendingEntry, entry_row
from loyalty_core.errors import InvalidInput
from loyalty_core.journal import open_operation, record
from loyalty_core.lots import credit
from loyalty_core.rules import (
    Rules,
)
from loyalty_core.validation import check_id


def award_activity(
    session: Session,
    *,
    activity_id: str,
    customer_id: str,
    kind: str,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Points for a non-transaction activity (social, referral, survey...), once per activity id."""
    now = now or utcnow()
    check_id(activity_id, "activity_id", bounds.EXT_ID_LEN)
    check_id(customer_id, "customer_id")
    if kind not in rules.activities:
        raise InvalidInput(
            f"kind must be one of {', '.join(sorted(rules.activities))}, got {kind!r}", field="kind"
        )
    op = open_operation(
        session, "activity", activity_id, customer_id, (customer_id, kind), create=True, now=now
    )
    if op.prior is not None:
        return op.prior
    m, req = op.member, op.req_hash
    points = rules.activities[kind]
    entry = PendingEntry(
        entry_row(
            "activity",
            activity_id,
            m.id,
            status="posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=points,
            detail={"kind": kind},
            rules_version=rules.version,
        )
    )
    if points:
        credit(m, points, entry, rules, now)
        m.dirty = True
    response = {
        "activity_id": activity_id,
        "customer_id": m.id,
        "kind": kind,
        "points": points,
        "balance": m.balance,
    }
    return record(session, entry, m, response)
