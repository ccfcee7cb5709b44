"""The decision log and the feedback that joins back to it.

Every choice the service makes is stored with the probability it had of being made, and every later event
(shown, viewed, accepted, completed; activations and completions from the ledger) carries the decision id,
so the next training run and any off-policy evaluation read what was decided next to what happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from loyalty_core.errors import Conflict, InvalidInput, NotFound
from loyalty_core.journal import ACTIVATIONS, MEMBERS, OFFER_EVENTS, check_id, dialect_insert, utcnow
from loyalty_core.rules import Rules, rolling_spend, tier_for
from loyalty_core.schema import Decision

DECISIONS = cast(Table, Decision.__table__)
FEEDBACK_EVENTS = ("shown", "viewed", "accepted", "completed")
SHADOW_PREFIX = "shadow:"
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def record_decisions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert decisions (``id, customer_id, made_at, policy, offer_id, probability, served, ...``) at once."""
    for row in rows:
        p = row["probability"]
        if not 0.0 <= float(p) <= 1.0:
            raise InvalidInput(f"decision {row['id']}: probability {p} is not in [0, 1]", field="probability")
    if rows:
        session.execute(insert(DECISIONS), list(rows))


def offered_decision(
    session: Session, decision_id: str, offer_id: str, *, customer_id: str | None = None
) -> Decision:
    """The served decision that proposed ``offer_id`` (to ``customer_id``, when given), or why not.

    Outcomes (feedback, activations) join to decisions for training and off-policy evaluation; one joined to
    a decision that does not exist, was a shadow's, went to someone else or never proposed the offer would
    credit a policy with a choice it did not make.
    """
    decision = session.get(Decision, decision_id)
    if decision is None:
        raise NotFound(f"unknown decision {decision_id!r}", code="unknown_decision")
    if customer_id is not None and decision.customer_id != customer_id:
        raise Conflict(f"decision {decision_id!r} was made for another customer", code="decision_mismatch")
    if not decision.served:
        raise Conflict(
            f"decision {decision_id!r} was a shadow policy's, never served: no outcome can belong to it",
            code="not_served",
        )
    offered = {o.get("offer_id") for o in decision.offers or ()} | {decision.offer_id}
    if offer_id not in offered:
        raise InvalidInput(
            f"offer {offer_id!r} was not part of decision {decision_id!r}",
            field="offer_id",
            code="not_offered",
        )
    return decision


def record_feedback(
    session: Session,
    *,
    decision_id: str,
    offer_id: str,
    event: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Log what a customer did with an offer of a decision; sending the same event again changes nothing."""
    now = now or utcnow()
    check_id(decision_id, "decision_id")
    check_id(offer_id, "offer_id")
    if event not in FEEDBACK_EVENTS:
        raise InvalidInput(f"event must be one of {', '.join(FEEDBACK_EVENTS)}, got {event!r}", field="event")
    decision = offered_decision(session, decision_id, offer_id)
    ext_id = f"feedback:{decision_id}:{offer_id}:{event}"
    inserted = session.execute(
        dialect_insert(session, OFFER_EVENTS).on_conflict_do_nothing().returning(OFFER_EVENTS.c.id),
        {
            "ext_id": ext_id,
            "customer_id": decision.customer_id,
            "offer_id": offer_id,
            "event": event,
            "occurred_at": now,
            "channel": decision.channel,
            "decision_id": decision_id,
            "value": None,
        },
    ).first()
    first_at = session.scalar(select(OFFER_EVENTS.c.occurred_at).where(OFFER_EVENTS.c.ext_id == ext_id))
    return {
        "decision_id": decision_id,
        "offer_id": offer_id,
        "event": event,
        "customer_id": decision.customer_id,
        "recorded_at": first_at,
        "replayed": inserted is None,
    }


# --- what eligibility needs to know (read side) -------------------------------------------------------------
# Statements built once: a ranking reads one customer's facts on every request, and building and compiling
# a select costs more than running it on SQLite.

_EV = OFFER_EVENTS.c
_DC = DECISIONS.c
_AC = ACTIVATIONS.c
_RUNNING = select(_AC.member_id, _AC.offer_id).where(
    _AC.activated_at <= bindparam("now"), _AC.expires_at > bindparam("now")
)
_SENT = select(
    _EV.decision_id, _EV.ext_id, _EV.customer_id, _EV.offer_id, _EV.occurred_at, _EV.channel
).where(_EV.event == "sent", _EV.occurred_at > bindparam("since"))
_SERVED = select(_DC.id, _DC.customer_id, _DC.offer_id, _DC.offers, _DC.made_at, _DC.channel).where(
    _DC.served.is_(True), _DC.made_at > bindparam("since")
)
_SPEND_OF = select(MEMBERS.c.id, MEMBERS.c.spend).where(MEMBERS.c.id.in_(bindparam("ids", expanding=True)))
_RUNNING_OF = _RUNNING.where(_AC.member_id.in_(bindparam("ids", expanding=True)))
_SENT_OF = _SENT.where(_EV.customer_id.in_(bindparam("ids", expanding=True)))
_SERVED_OF = _SERVED.where(_DC.customer_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class ContactRow:
    """An offer that reached a customer: a ``sent`` funnel event, or one offer of a served decision."""

    customer_id: str
    offer_id: str
    sent_at: dt.datetime
    channel: str | None


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What offer eligibility needs to know about one customer now."""

    tier: str | None  # None: not a member of the programme yet
    active_offers: frozenset[str]
    contacts: tuple[ContactRow, ...]


def _contacts(served: Iterable[Any], sent: Iterable[Any]) -> list[ContactRow]:
    """Each (decision, offer) once: historical campaigns are in both tables (a decision row and its ``sent``
    event carrying the decision's id), the service's own decisions only in ``decisions``."""
    seen: set[tuple[str, str]] = set()
    out: list[ContactRow] = []
    for did, cid, first, slate, at, channel in served:
        for oid in [o.get("offer_id") for o in slate] if slate else [first]:
            if oid is None or (did, oid) in seen:
                continue
            seen.add((did, oid))
            out.append(ContactRow(cid, oid, at, channel))
    for did, ext_id, cid, oid, at, channel in sent:
        key = (did, oid) if did is not None else (f"event:{ext_id}", oid)
        if key not in seen:
            seen.add(key)
            out.append(ContactRow(cid, oid, at, channel))
    return out


def _tier(spend: dict[str, str] | None, rules: Rules, at: dt.datetime) -> str:
    return tier_for(rolling_spend({k: Decimal(v) for k, v in (spend or {}).items()}, at), rules.tiers).name


def customer_facts(
    bind: Connection | Session,
    customer_ids: Sequence[str],
    *,
    rules: Rules,
    now: dt.datetime,
    window: dt.timedelta,
) -> dict[str, CustomerFacts]:
    """Tier, running activations and contacts within ``window`` before ``now`` of each customer: four
    statements whatever the number of customers (the service reads those of concurrent requests at once)."""
    ids = list(dict.fromkeys(customer_ids))
    since = now - window
    spend: dict[str, Any] = {}
    active: dict[str, set[str]] = {}
    served: list[Any] = []
    sent: list[Any] = []
    for start in range(0, len(ids), IN_CHUNK):
        chunk = {"ids": ids[start : start + IN_CHUNK]}
        spend.update((m, s) for m, s in bind.execute(_SPEND_OF, chunk))
        for m, o in bind.execute(_RUNNING_OF, {**chunk, "now": now}):
            active.setdefault(m, set()).add(o)
        served.extend(bind.execute(_SERVED_OF, {**chunk, "since": since}))
        sent.extend(bind.execute(_SENT_OF, {**chunk, "since": since}))
    contacts: dict[str, list[ContactRow]] = {}
    for c in _contacts(served, sent):
        contacts.setdefault(c.customer_id, []).append(c)
    return {
        cid: CustomerFacts(
            tier=_tier(spend[cid], rules, now) if cid in spend else None,
            active_offers=frozenset(active.get(cid, ())),
            contacts=tuple(contacts.get(cid, ())),
        )
        for cid in ids
    }


def contacts_since(bind: Connection | Session, since: dt.datetime) -> list[ContactRow]:
    """Every customer's contacts after ``since`` (campaign planning), each (decision, offer) once."""
    return _contacts(bind.execute(_SERVED, {"since": since}), bind.execute(_SENT, {"since": since}))


def running_activations(bind: Connection | Session, now: dt.datetime) -> list[tuple[str, str]]:
    """(customer, offer) of every activation running at ``now`` (activated <= now < expiry, as the ledger)."""
    return [(m, o) for m, o in bind.execute(_RUNNING, {"now": now})]


def tiers_at(bind: Connection | Session, rules: Rules, at: dt.datetime) -> dict[str, str]:
    """The tier of every member at ``at``."""
    return {
        mid: _tier(spend, rules, at) for mid, spend in bind.execute(select(MEMBERS.c.id, MEMBERS.c.spend))
    }


# --- shadow policies (read side) ----------------------------------------------------------------------------


def shadow_pairs(
    session: Session, *, since: dt.datetime | None = None, limit: int = 100_000
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest ``limit`` shadow decisions, the served decisions they shadowed, and those decisions' events.

    A shadow row names the decision it shadowed in ``model_versions["shadow_of"]``. Returns plain dicts:
    (shadow rows, served rows, offer events with a decision id among the served ones).
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
        )
        .where(dc.policy.startswith(SHADOW_PREFIX, autoescape=True), dc.served.is_(False))
        .order_by(dc.made_at.desc())
        .limit(limit)
    )
    if since is not None:
        q = q.where(dc.made_at >= since)
    shadows = [dict(r._mapping) for r in session.execute(q)]
    served_ids = [
        str(r["model_versions"]["shadow_of"])
        for r in shadows
        if isinstance(r["model_versions"], dict) and r["model_versions"].get("shadow_of")
    ]
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
