"""What offer eligibility needs to know about customers now, read from the ledger and the decision log.

Tier (from the members' rolling spend), running activations, and contacts within the frequency-cap window:
an offer reaches a customer either as a ``sent`` funnel event (historical campaigns) or as one offer of a
served decision (the service's own), and each (decision, offer) counts once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from loyalty_core.decisions.record import DECISIONS
from loyalty_core.rules import Rules, rolling_spend, tier_for
from loyalty_core.schema import ACTIVATIONS, MEMBERS, OFFER_EVENTS

IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits

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
