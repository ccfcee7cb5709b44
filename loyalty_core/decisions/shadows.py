"""Shadow decisions read back for judging a challenger: each shadow row, the served row it shadowed, and the
events of the served one (``serving.runtime.shadow`` turns them into agreement and off-policy estimates)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty_core.decisions.facts import IN_CHUNK
from loyalty_core.decisions.record import DECISIONS, SHADOW_PREFIX
from loyalty_core.schema import OFFER_EVENTS


def shadow_pairs(
    session: Session, *, since: dt.datetime | None = None, limit: int = 100_000
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest ``limit`` shadow decisions, the served decisions they shadowed, and those decisions' events.

    A shadow row names the decision it shadowed in ``shadow_of``. Returns plain dicts: (shadow rows with
    their ranking context ``k``, ``candidates``, ``shadow_of``; served rows; offer events with a decision id
    among the served ones).
    """
    dc = DECISIONS.c
    q = (
        select(
            dc.id,
            dc.customer_id,
            dc.made_at,
            dc.policy,
            dc.offer_id,
            dc.probability,
            dc.offers,
            dc.model_versions,
            dc.k,
            dc.candidates,
            dc.shadow_of,
        )
        .where(dc.policy.startswith(SHADOW_PREFIX, autoescape=True), dc.served.is_(False))
        .order_by(dc.made_at.desc())
        .limit(limit)
    )
    if since is not None:
        q = q.where(dc.made_at >= since)
    shadows = [dict(r._mapping) for r in session.execute(q)]
    served_ids = [str(r["shadow_of"]) for r in shadows if r["shadow_of"]]
    served: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    base = select(dc.id, dc.customer_id, dc.made_at, dc.policy, dc.offer_id, dc.probability, dc.offers)
    ev = OFFER_EVENTS.c
    for start in range(0, len(served_ids), IN_CHUNK):
        chunk = served_ids[start : start + IN_CHUNK]
        served.extend(dict(r._mapping) for r in session.execute(base.where(dc.id.in_(chunk))))
        events.extend(
            dict(r._mapping)
            for r in session.execute(
                select(ev.decision_id, ev.offer_id, ev.event).where(ev.decision_id.in_(chunk))
            )
        )
    return shadows, served, events
