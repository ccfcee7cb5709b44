"""Posting transactions: the batch path shared by ``POST /v1/transactions`` and the bulk importers.

Call it inside a transaction (``with Session(engine) as s, s.begin():``) or through
``journal.in_transaction``, which also retries the rare race that a unique index or a deadlock settles.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.clock import utcnow
from loyalty_core.entries import PendingEntry, entry_row
from loyalty_core.errors import Conflict, InvalidInput, LoyaltyError
from loyalty_core.idempotency import (
    PRIOR_ENTRIES_PG,
    Prior,
    answer_again,
    conflict,
    prior_entries,
    request_hash,
)
from loyalty_core.locks import enrol_and_read, lock_members
from loyalty_core.lots import credit
from loyalty_core.offers import funnel_event
from loyalty_core.rules import (
    OfferEffect,
    Rules,
    add_spend,
    compute_earning,
    fraud_reason_for_earning,
    note_posting,
    period_key,
    rolling_spend,
)
from loyalty_core.schema import ACTIVATIONS, OFFER_EVENTS, Activation, Offer, RuleUsage
from loyalty_core.sql import dialect_insert, upsert
from loyalty_core.validation import FUTURE_TOLERANCE, check_amount, check_id
from loyalty_core.vocabulary import TXN_TYPES
from loyalty_core.writer import write_entries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TransactionIn:
    transaction_id: str
    customer_id: str
    type: str
    amount: Decimal
    occurred_at: dt.datetime
    category: str | None = None
    channel: str | None = None
    currency: str | None = None


def validate_transaction(t: TransactionIn, rules: Rules, now: dt.datetime) -> TransactionIn:
    """Check one transaction and return it normalised; InvalidInput names the field at fault."""
    check_id(t.transaction_id, "transaction_id", 128)
    check_id(t.customer_id, "customer_id")
    if t.type not in TXN_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TXN_TYPES)}, got {t.type!r}", field="type")
    amount = check_amount(t.amount)
    if not isinstance(t.occurred_at, dt.datetime) or t.occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at must be a timezone-aware timestamp", field="occurred_at")
    occurred = t.occurred_at.astimezone(dt.UTC)
    if occurred > now + FUTURE_TOLERANCE:
        raise InvalidInput(f"occurred_at {occurred.isoformat()} is in the future", field="occurred_at")
    if occurred.year < 1970:
        raise InvalidInput("occurred_at is before 1970", field="occurred_at")
    currency = (t.currency or rules.currency).upper()
    if currency != rules.currency and currency not in rules.fx:
        known = ", ".join([rules.currency, *sorted(rules.fx)])
        raise InvalidInput(
            f"currency {currency} cannot earn points under rules {rules.version} (they accept {known})",
            field="currency",
        )
    for name, limit in (("category", bounds.CATEGORY_LEN), ("channel", bounds.CHANNEL_LEN)):
        v = getattr(t, name)
        if v is not None and (not isinstance(v, str) or len(v) > limit or not v.isprintable()):
            raise InvalidInput(f"{name} must be a printable string of at most {limit} characters", field=name)
    return TransactionIn(
        t.transaction_id,
        t.customer_id,
        t.type,
        amount,
        occurred,
        t.category or None,
        t.channel or None,
        currency,
    )


def _txn_hash(t: TransactionIn) -> str:
    return request_hash(
        "earn", t.customer_id, t.type, t.amount, t.occurred_at, t.category, t.channel, t.currency
    )


@dataclass(frozen=True, slots=True)
class _ActiveOffer:
    effect: OfferEffect
    member_id: str
    activated_at: dt.datetime
    expires_at: dt.datetime
    offer_id: str
    decision_id: str | None


def _load_offers(
    session: Session, member_ids: list[str], start: dt.datetime, end: dt.datetime
) -> list[_ActiveOffer]:
    rows = session.execute(
        select(
            Activation.id,
            Activation.member_id,
            Activation.activated_at,
            Activation.expires_at,
            Activation.completed_at,
            Activation.offer_id,
            Activation.decision_id,
            Offer.kind,
            Offer.multiplier,
            Offer.bonus_points,
            Offer.threshold,
            Offer.categories,
            Offer.txn_types,
        )
        .join(Offer, Offer.id == Activation.offer_id)
        .where(
            Activation.member_id.in_(member_ids),
            Activation.expires_at > start,
            Activation.activated_at <= end,
        )
    )
    return [
        _ActiveOffer(
            OfferEffect(
                activation_id=r.id,
                kind=r.kind,
                multiplier=r.multiplier,
                bonus_points=r.bonus_points,
                threshold=r.threshold,
                categories=frozenset(r.categories) if r.categories is not None else None,
                txn_types=frozenset(r.txn_types) if r.txn_types is not None else None,
                completed=r.completed_at is not None,
            ),
            r.member_id,
            r.activated_at,
            r.expires_at,
            r.offer_id,
            r.decision_id,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class PostingResult:
    transaction_id: str
    response: dict[str, Any]
    replayed: bool


Outcome = PostingResult | LoyaltyError


def post_transactions(
    session: Session,
    txns: Sequence[TransactionIn],
    *,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """Post a batch of transactions; one outcome per input, in order (a result, or the error for that row).

    The whole batch is one database transaction: the members involved are locked once, their state is read
    in a handful of queries, every earning is computed by the pure rules in input order (so several
    transactions of one member in a batch see each other), and everything is written back in bulk.
    """
    now = now or utcnow()
    outcomes: list[Outcome | None] = [None] * len(txns)
    first_index: dict[str, int] = {}
    hashes: dict[int, str] = {}
    fresh: list[tuple[int, TransactionIn]] = []
    for i, raw in enumerate(txns):
        try:
            t = validate_transaction(raw, rules, now)
        except InvalidInput as exc:
            outcomes[i] = exc
            continue
        hashes[i] = _txn_hash(t)
        if t.transaction_id in first_index:
            continue  # answered from the first occurrence below
        first_index[t.transaction_id] = i
        fresh.append((i, t))
    if fresh:
        _post_fresh(session, fresh, hashes, outcomes, rules=rules, actor=actor, now=now)
    for i, raw in enumerate(txns):
        if outcomes[i] is not None or i not in hashes:
            continue
        j = first_index[raw.transaction_id]
        first = outcomes[j]
        if hashes[i] != hashes[j]:
            outcomes[i] = conflict("transaction", raw.transaction_id)
        elif isinstance(first, PostingResult):
            outcomes[i] = PostingResult(first.transaction_id, first.response, replayed=True)
        else:
            outcomes[i] = first
    return [o for o in outcomes if o is not None]


def _post_fresh(
    session: Session,
    fresh: list[tuple[int, TransactionIn]],
    hashes: dict[int, str],
    outcomes: list[Outcome | None],
    *,
    rules: Rules,
    actor: str,
    now: dt.datetime,
) -> None:
    ids = [t.transaction_id for _, t in fresh]
    together = enrol_and_read(
        session, (t.customer_id for _, t in fresh), now=now, also=(PRIOR_ENTRIES_PG, ("earn", ids))
    )
    if together is not None:
        members, rows = together
        existing = {r[0]: Prior(r[0], r[1], r[2]) for r in rows}
    else:
        members = lock_members(session, (t.customer_id for _, t in fresh), create=True, now=now)
        existing = prior_entries(session, "earn", ids)
    todo: list[tuple[int, TransactionIn]] = []
    for i, t in fresh:
        prior = existing.get(t.transaction_id)
        if prior is None:
            todo.append((i, t))
            continue
        try:
            outcomes[i] = PostingResult(t.transaction_id, answer_again(prior, hashes[i], "transaction"), True)
        except Conflict as exc:
            outcomes[i] = exc
    if not todo:
        return
    # A posting dated slightly ahead of our clock (within FUTURE_TOLERANCE: the caller's clock runs fast) is
    # booked now: an entry dated in the future could be spent before its date, leaving the balance as of
    # that moment negative. The caller's timestamp stays on the entry's detail.
    ahead = {i: t.occurred_at for i, t in todo if t.occurred_at > now}
    if ahead:
        todo = [(i, replace(t, occurred_at=now) if i in ahead else t) for i, t in todo]
    member_ids = sorted({t.customer_id for _, t in todo})
    earliest = min(t.occurred_at for _, t in todo)
    latest = max(t.occurred_at for _, t in todo)
    # Only members whose latest activation has not yet expired can have an offer in play.
    with_offers = [
        m for m in member_ids if (until := members[m].offers_until) is not None and until > earliest
    ]
    offers_by_member: dict[str, list[_ActiveOffer]] = defaultdict(list)
    if with_offers:
        for off in _load_offers(session, with_offers, earliest, latest):
            offers_by_member[off.member_id].append(off)
    completed: dict[int, dt.datetime] = {}
    usage: dict[tuple[str, str, str], int] = {}
    if rules.has_caps:
        for u in session.execute(select(RuleUsage).where(RuleUsage.member_id.in_(member_ids))).scalars():
            usage[(u.member_id, u.rule_id, u.period)] = u.points
    touched_usage: set[tuple[str, str, str]] = set()
    capped = {r.id: r for r in rules.earn if r.cap_points is not None}

    pending: list[PendingEntry] = []
    for i, t in todo:
        m = members[t.customer_id]
        effects = [
            o.effect for o in offers_by_member.get(m.id, ()) if o.activated_at <= t.occurred_at < o.expires_at
        ]
        effects = [
            OfferEffect(
                e.activation_id,
                e.kind,
                e.multiplier,
                e.bonus_points,
                e.threshold,
                e.categories,
                e.txn_types,
                e.completed or e.activation_id in completed,
            )
            for e in effects
        ]
        home_amount = rules.in_home_currency(t.amount, t.currency or rules.currency)
        cap_used = {
            rid: usage.get((m.id, rid, period_key(t.occurred_at, r.cap_period or "month")), 0)
            for rid, r in capped.items()
        }
        earning = compute_earning(
            rules,
            txn_type=t.type,
            amount=home_amount,
            category=t.category,
            tier_spend=rolling_spend(m.spend, t.occurred_at),
            offers=effects,
            cap_used=cap_used,
        )
        reason = fraud_reason_for_earning(
            rules.fraud,
            amount=home_amount,
            occurred_at=t.occurred_at,
            recent_times=m.recent,
            txn_count=m.txn_count,
            amount_sum=m.amount_sum,
        )
        note_posting(m.recent, t.occurred_at, rules.fraud)
        m.dirty = True
        status = "held" if reason else "posted"
        response: dict[str, Any] = {
            "transaction_id": t.transaction_id,
            "customer_id": m.id,
            "points": 0 if reason else earning.points,
            "multiplier": float(earning.multiplier),
            "tier": earning.tier,
            "status": status,
        }
        entry = PendingEntry(
            entry_row(
                "earn",
                t.transaction_id,
                m.id,
                status=status,
                effective_at=t.occurred_at,
                now=now,
                actor=actor,
                req_hash=hashes[i],
                response=response,
                points=earning.points,
                txn_type=t.type,
                amount=t.amount,
                currency=t.currency,
                category=t.category,
                channel=t.channel,
                multiplier=earning.multiplier,
                tier=earning.tier,
                rules_version=rules.version,
                activation_id=earning.activation_id,
                reason=reason,
                detail={"occurred_at": ahead[i].isoformat()} if i in ahead else None,
            )
        )
        if reason is None:
            if earning.points:
                credit(m, earning.points, entry, rules, t.occurred_at, now=now)
            m.txn_count += 1
            m.amount_sum += home_amount
            m.dirty = True
            if t.type in rules.qualifying_types:
                add_spend(m.spend, t.occurred_at, home_amount)
            for rid, pts in earning.rule_points.items():
                ukey = (m.id, rid, period_key(t.occurred_at, capped[rid].cap_period or "month"))
                usage[ukey] = usage.get(ukey, 0) + pts
                touched_usage.add(ukey)
            for aid in earning.completed_activation_ids:
                completed.setdefault(aid, t.occurred_at)
        else:
            response["reason"] = reason
            log.warning("posting held: customer=%s transaction=%s %s", m.id, t.transaction_id, reason)
        response["balance"] = m.balance
        pending.append(entry)
        outcomes[i] = PostingResult(t.transaction_id, response, replayed=False)

    write_entries(session, pending, members.values())
    if touched_usage:
        session.execute(
            upsert(session, RuleUsage, ["member_id", "rule_id", "period"], ["points"]),
            [
                {"member_id": k[0], "rule_id": k[1], "period": k[2], "points": usage[k]}
                for k in sorted(touched_usage)
            ],
        )
    if completed:
        session.execute(
            update(ACTIVATIONS)
            .where(ACTIVATIONS.c.id == bindparam("aid"), ACTIVATIONS.c.completed_at.is_(None))
            .values(completed_at=bindparam("at")),
            [{"aid": aid, "at": at} for aid, at in completed.items()],
        )
        # The offer funnel learns of the completion from the ledger, which is what decided it.
        by_id = {o.effect.activation_id: o for offs in offers_by_member.values() for o in offs}
        session.execute(
            dialect_insert(session, OFFER_EVENTS).on_conflict_do_nothing(),
            [
                funnel_event(
                    aid, "completed", by_id[aid].member_id, by_id[aid].offer_id, at, by_id[aid].decision_id
                )
                for aid, at in completed.items()
            ],
        )


def post_transaction(
    session: Session, txn: TransactionIn, *, rules: Rules, actor: str, now: dt.datetime | None = None
) -> PostingResult:
    (outcome,) = post_transactions(session, [txn], rules=rules, actor=actor, now=now)
    if isinstance(outcome, LoyaltyError):
        raise outcome
    return outcome
