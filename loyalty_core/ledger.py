"""The points ledger: every movement of points, double-entry, idempotent, in one database transaction each.

Call these functions inside a transaction (``with Session(engine) as s, s.begin():``) or through
``in_transaction`` which also retries the rare race that a unique index or a deadlock settles. Concurrency
rule: a member's row is locked (``SELECT ... FOR UPDATE``; SQLite serialises writers with
``BEGIN IMMEDIATE``) before anything about that member is read, so two requests for the same member never
interleave, and the idempotency check happens under that lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, bindparam, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from loyalty_core.errors import Conflict, InsufficientPoints, InvalidInput, LoyaltyError, NotFound
from loyalty_core.rules import (
    REWARDS,
    TXN_TYPES,
    OfferEffect,
    Rules,
    compute_earning,
    fraud_reason_for_earning,
    fraud_reason_for_redemption,
    period_key,
    reversal_points,
    tier_for,
    tier_window,
)
from loyalty_core.schema import Activation, Entry, Hold, Line, Lot, Member, Offer, RuleUsage, SpendMonth

log = logging.getLogger(__name__)

# Core tables for executemany statements (the ORM would switch them to per-primary-key bulk mode).
MEMBERS = cast(Table, Member.__table__)
LOTS = cast(Table, Lot.__table__)
ACTIVATIONS = cast(Table, Activation.__table__)
ENTRIES = cast(Table, Entry.__table__)
LINES = cast(Table, Line.__table__)

MAX_AMOUNT = Decimal("1000000000000")  # 10^12 in the currency's units: anything larger is a caller's bug
MAX_ID_LEN = 64
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
CENT = Decimal("0.01")

T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------------------
# Requests and validation (pure)
# ---------------------------------------------------------------------------------------------------


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


def _check_id(value: object, name: str, max_len: int = MAX_ID_LEN) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    if len(value) > max_len:
        raise InvalidInput(f"{name} is longer than {max_len} characters", field=name)
    if not value.isprintable():
        raise InvalidInput(f"{name} contains control characters", field=name)
    return value


def _check_amount(value: object, name: str = "amount") -> Decimal:
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput(f"{name} is not a number: {value!r}", field=name) from exc
    if not amount.is_finite():
        raise InvalidInput(f"{name} must be finite", field=name)
    if amount <= 0:
        raise InvalidInput(f"{name} must be positive, got {amount}", field=name)
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"{name} {amount} is beyond any plausible transaction", field=name)
    if amount != amount.quantize(CENT):
        raise InvalidInput(f"{name} has more than 2 decimal places: {amount}", field=name)
    return amount.quantize(CENT)


def validate_transaction(t: TransactionIn, rules: Rules, now: dt.datetime) -> TransactionIn:
    """Check one transaction and return it normalised; InvalidInput names the field at fault."""
    _check_id(t.transaction_id, "transaction_id", 128)
    _check_id(t.customer_id, "customer_id")
    if t.type not in TXN_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TXN_TYPES)}, got {t.type!r}", field="type")
    amount = _check_amount(t.amount)
    if not isinstance(t.occurred_at, dt.datetime) or t.occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at must be a timezone-aware timestamp", field="occurred_at")
    occurred = t.occurred_at.astimezone(dt.UTC)
    if occurred > now + FUTURE_TOLERANCE:
        raise InvalidInput(f"occurred_at {occurred.isoformat()} is in the future", field="occurred_at")
    if occurred.year < 1970:
        raise InvalidInput("occurred_at is before 1970", field="occurred_at")
    currency = (t.currency or rules.currency).upper()
    if currency != rules.currency:
        raise InvalidInput(
            f"currency {currency} cannot earn points under rules {rules.version} "
            f"(they earn in {rules.currency})",
            field="currency",
        )
    for name, limit in (("category", 32), ("channel", 16)):  # the column widths of ``entries``
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


def request_hash(*parts: object) -> str:
    """A stable fingerprint of a request body: a replay must match it exactly, field by field."""
    canon = "\x1f".join(
        "" if p is None else p.isoformat() if isinstance(p, dt.datetime) else str(p) for p in parts
    )
    return hashlib.sha256(canon.encode()).hexdigest()


def _txn_hash(t: TransactionIn) -> str:
    return request_hash(
        "earn", t.customer_id, t.type, t.amount, t.occurred_at, t.category, t.channel, t.currency
    )


# ---------------------------------------------------------------------------------------------------
# Transactions, retries, locks
# ---------------------------------------------------------------------------------------------------

_RETRY_SQLSTATES = {"40001", "40P01", "23505"}


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRY_SQLSTATES:
        return True
    if isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(orig):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(orig)


def in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 8) -> T:
    """Run ``work`` in one transaction, retrying races that the database settled by refusing one side.

    A retry is safe because every operation is idempotent on the caller's id: the second attempt sees what
    the winner wrote and answers a replay or a conflict instead of writing twice.
    """
    for attempt in range(attempts):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.002 * (2**attempt)))
    raise AssertionError("unreachable")


@dataclass(slots=True)
class MemberState:
    id: str
    balance: int
    debt: int
    txn_count: int
    amount_sum: Decimal
    created: bool = False
    dirty: bool = False


def _lock_members(
    session: Session, ids: Iterable[str], *, create: bool, now: dt.datetime
) -> dict[str, MemberState]:
    """Lock members in id order (a fixed order, so concurrent batches cannot deadlock), enrolling new ones."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    q = select(Member.id, Member.balance, Member.debt, Member.txn_count, Member.amount_sum)
    rows = session.execute(q.where(Member.id.in_(wanted)).order_by(Member.id).with_for_update()).all()
    found = {r.id: MemberState(r.id, r.balance, r.debt, r.txn_count, r.amount_sum) for r in rows}
    missing = [m for m in wanted if m not in found]
    if missing and create:
        session.execute(
            _insert_ignore(session, Member),
            [
                {"id": m, "created_at": now, "balance": 0, "debt": 0, "txn_count": 0, "amount_sum": 0}
                for m in missing
            ],
        )
        rows = session.execute(q.where(Member.id.in_(missing)).order_by(Member.id).with_for_update()).all()
        for r in rows:
            found[r.id] = MemberState(r.id, r.balance, r.debt, r.txn_count, r.amount_sum, created=True)
    return found


def _insert_ignore(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def _upsert(session: Session, table: Any, keys: list[str], set_cols: list[str]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)  # type: ignore[assignment]
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in set_cols})


def _lock_one(session: Session, customer_id: str, *, create: bool, now: dt.datetime) -> MemberState:
    members = _lock_members(session, [customer_id], create=create, now=now)
    if customer_id not in members:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    return members[customer_id]


def _replay(session: Session, kind: str, ext_id: str, req_hash: str) -> dict[str, Any] | None:
    row = session.execute(
        select(Entry.request_hash, Entry.response).where(Entry.kind == kind, Entry.ext_id == ext_id)
    ).first()
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise Conflict(
            f"{kind} id {ext_id!r} was already used with a different request body",
            code="idempotency_conflict",
        )
    return dict(row.response)


def _save_member(session: Session, m: MemberState) -> None:
    session.execute(
        update(Member)
        .where(Member.id == m.id)
        .values(balance=m.balance, debt=m.debt, txn_count=m.txn_count, amount_sum=m.amount_sum)
    )


# ---------------------------------------------------------------------------------------------------
# Journal writing
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PendingEntry:
    """An entry with its lines and lots, written together so that its lines always sum to zero."""

    row: dict[str, Any]
    lines: list[tuple[str, str | None, int]] = field(default_factory=list)  # (account, member_id, points)
    lot: tuple[str, int, dt.datetime, dt.datetime] | None = None  # (member, points, earned_at, expires_at)


def _credit(m: MemberState, points: int, entry: PendingEntry, rules: Rules, at: dt.datetime) -> int:
    """Book earned points: first settle the member's debt, the rest becomes a new lot. Returns lot points."""
    settle = min(points, m.debt)
    to_balance = points - settle
    entry.lines.append(("programme", None, -points))
    if settle:
        entry.lines.append(("debt", m.id, settle))
        m.debt -= settle
    if to_balance:
        entry.lines.append(("points", m.id, to_balance))
        entry.lot = (m.id, to_balance, at, at + rules.lot_lifetime)
        m.balance += to_balance
    m.dirty = True
    return to_balance


_INSERT_PLANS: dict[tuple[str, str], tuple[str, list[str], list[Any]]] = {}


def _bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Many-row INSERT straight through the driver's executemany, with each column's bind conversion.

    The ledger writes four rows per posting; SQLAlchemy's per-statement parameter machinery cost more than
    the database itself on the bulk path, so the statement text and converters are prepared once per table.
    Every row must carry every column that the plan names (the entry builders guarantee it).
    """
    conn = session.connection()
    dialect = conn.dialect
    key = (dialect.name, table.name)
    plan = _INSERT_PLANS.get(key)
    if plan is None:
        cols = [c.name for c in table.columns if c.name in rows[0]]
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # Names come from our own schema, never from input, so building the text is safe.
        values = ", ".join([mark] * len(cols))
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({values})"  # noqa: S608
        procs = [table.c[c].type._cached_bind_processor(dialect) for c in cols]
        plan = (sql, cols, procs)
        _INSERT_PLANS[key] = plan
    sql, cols, procs = plan
    pairs = list(zip(cols, procs, strict=True))
    params = [tuple(proc(row[c]) if proc is not None else row[c] for c, proc in pairs) for row in rows]
    conn.exec_driver_sql(sql, params)


def _allocate_entry_ids(session: Session, n: int) -> list[int]:
    """Entry ids chosen before the insert, so lines and lots can point at them in the same bulk write.

    (``INSERT ... RETURNING`` in parameter order falls back to one statement per row on SQLite.) PostgreSQL
    hands out a block of its sequence; SQLite runs one writer at a time (``BEGIN IMMEDIATE``), so the next ids
    after the current maximum are ours until commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence('entries', 'id')) FROM generate_series(1, :n)"),
            {"n": n},
        )
        return [r[0] for r in rows]
    start = int(session.scalar(select(func.coalesce(func.max(Entry.id), 0))) or 0)
    return list(range(start + 1, start + n + 1))


def _write_entries(session: Session, pending: Sequence[PendingEntry]) -> list[int]:
    if not pending:
        return []
    for p in pending:
        assert sum(pts for _, _, pts in p.lines) == 0, f"unbalanced entry {p.row['kind']} {p.row['ext_id']}"
    ids = _allocate_entry_ids(session, len(pending))
    for eid, p in zip(ids, pending, strict=True):
        p.row["id"] = eid
    _bulk_insert(session, ENTRIES, [p.row for p in pending])
    lines = [
        {
            "entry_id": eid,
            "account": acc,
            "member_id": mem,
            "points": pts,
            "effective_at": p.row["effective_at"],
        }
        for eid, p in zip(ids, pending, strict=True)
        for acc, mem, pts in p.lines
    ]
    if lines:
        _bulk_insert(session, LINES, lines)
    lots = [
        {
            "member_id": p.lot[0],
            "entry_id": eid,
            "points": p.lot[1],
            "remaining": p.lot[1],
            "earned_at": p.lot[2],
            "expires_at": p.lot[3],
        }
        for eid, p in zip(ids, pending, strict=True)
        if p.lot is not None
    ]
    if lots:
        _bulk_insert(session, LOTS, lots)
    return ids


def _entry_row(
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
    row: dict[str, Any] = {
        "kind": kind,
        "ext_id": ext_id,
        "member_id": member_id,
        "status": status,
        "effective_at": effective_at,
        "recorded_at": now,
        "actor": actor,
        "request_hash": req_hash,
        "response": response,
        "points": points,
        "parent_id": None,
        "txn_type": None,
        "amount": None,
        "currency": None,
        "category": None,
        "channel": None,
        "multiplier": None,
        "tier": None,
        "rules_version": None,
        "activation_id": None,
        "reason": None,
        "detail": None,
    }
    row.update(extra)
    return row


# ---------------------------------------------------------------------------------------------------
# Earning: the batch path shared by the API and the importers
# ---------------------------------------------------------------------------------------------------


def _load_spend(
    session: Session, member_ids: list[str], since: dt.date
) -> dict[tuple[str, dt.date], Decimal]:
    rows = session.execute(
        select(SpendMonth.member_id, SpendMonth.month, SpendMonth.amount).where(
            SpendMonth.member_id.in_(member_ids), SpendMonth.month >= since
        )
    )
    return {(r.member_id, r.month): r.amount for r in rows}


def _tier_spend(spend: dict[tuple[str, dt.date], Decimal], member_id: str, at: dt.datetime) -> Decimal:
    first, last = tier_window(at)
    total = Decimal(0)
    m = first
    while m <= last:
        total += spend.get((member_id, m), Decimal(0))
        m = dt.date(m.year + m.month // 12, m.month % 12 + 1, 1)
    return total


@dataclass(frozen=True, slots=True)
class _ActiveOffer:
    effect: OfferEffect
    member_id: str
    activated_at: dt.datetime
    expires_at: dt.datetime


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
            outcomes[i] = Conflict(
                f"transaction id {raw.transaction_id!r} was already used with a different request body",
                code="idempotency_conflict",
            )
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
    members = _lock_members(session, (t.customer_id for _, t in fresh), create=True, now=now)
    ids = [t.transaction_id for _, t in fresh]
    existing = {
        r.ext_id: r
        for chunk in _chunks(ids, 5000)
        for r in session.execute(
            select(Entry.ext_id, Entry.request_hash, Entry.response).where(
                Entry.kind == "earn", Entry.ext_id.in_(chunk)
            )
        )
    }
    todo: list[tuple[int, TransactionIn]] = []
    for i, t in fresh:
        prior = existing.get(t.transaction_id)
        if prior is None:
            todo.append((i, t))
        elif prior.request_hash != hashes[i]:
            outcomes[i] = Conflict(
                f"transaction id {t.transaction_id!r} was already used with a different request body",
                code="idempotency_conflict",
            )
        else:
            outcomes[i] = PostingResult(t.transaction_id, dict(prior.response), replayed=True)
    if not todo:
        return
    member_ids = sorted({t.customer_id for _, t in todo})
    earliest = min(t.occurred_at for _, t in todo)
    latest = max(t.occurred_at for _, t in todo)
    spend = _load_spend(session, member_ids, tier_window(earliest)[0])
    offers_by_member: dict[str, list[_ActiveOffer]] = defaultdict(list)
    for off in _load_offers(session, member_ids, earliest, latest):
        offers_by_member[off.member_id].append(off)
    completed: dict[int, dt.datetime] = {}
    window = rules.fraud.velocity_window
    recent: dict[str, list[dt.datetime]] = defaultdict(list)
    for r in session.execute(
        select(Entry.member_id, Entry.effective_at).where(
            Entry.member_id.in_(member_ids),
            Entry.kind == "earn",
            Entry.effective_at > earliest - window,
            Entry.effective_at <= latest,
        )
    ):
        recent[r.member_id].append(r.effective_at)
    usage: dict[tuple[str, str, str], int] = {}
    if rules.has_caps:
        for u in session.execute(select(RuleUsage).where(RuleUsage.member_id.in_(member_ids))).scalars():
            usage[(u.member_id, u.rule_id, u.period)] = u.points
    touched_usage: set[tuple[str, str, str]] = set()
    touched_spend: set[tuple[str, dt.date]] = set()
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
        cap_used = {
            rid: usage.get((m.id, rid, period_key(t.occurred_at, r.cap_period or "month")), 0)
            for rid, r in capped.items()
        }
        earning = compute_earning(
            rules,
            txn_type=t.type,
            amount=t.amount,
            category=t.category,
            tier_spend=_tier_spend(spend, m.id, t.occurred_at),
            offers=effects,
            cap_used=cap_used,
        )
        reason = fraud_reason_for_earning(
            rules.fraud,
            amount=t.amount,
            occurred_at=t.occurred_at,
            recent_times=recent[m.id],
            txn_count=m.txn_count,
            amount_sum=m.amount_sum,
        )
        recent[m.id].append(t.occurred_at)
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
            _entry_row(
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
            )
        )
        if reason is None:
            if earning.points:
                _credit(m, earning.points, entry, rules, t.occurred_at)
            m.txn_count += 1
            m.amount_sum += t.amount
            m.dirty = True
            if t.type in rules.qualifying_types:
                key = (m.id, t.occurred_at.date().replace(day=1))
                spend[key] = spend.get(key, Decimal(0)) + t.amount
                touched_spend.add(key)
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

    _write_entries(session, pending)
    _flush_members(session, members.values())
    if touched_spend:
        session.execute(
            _upsert(session, SpendMonth, ["member_id", "month"], ["amount"]),
            [{"member_id": k[0], "month": k[1], "amount": spend[k]} for k in sorted(touched_spend)],
        )
    if touched_usage:
        session.execute(
            _upsert(session, RuleUsage, ["member_id", "rule_id", "period"], ["points"]),
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


def _flush_members(session: Session, members: Iterable[MemberState]) -> None:
    dirty = [m for m in members if m.dirty]
    if not dirty:
        return
    session.execute(
        update(MEMBERS)
        .where(MEMBERS.c.id == bindparam("mid"))
        .values(
            balance=bindparam("b"), debt=bindparam("d"), txn_count=bindparam("c"), amount_sum=bindparam("s")
        ),
        [{"mid": m.id, "b": m.balance, "d": m.debt, "c": m.txn_count, "s": m.amount_sum} for m in dirty],
    )


def _chunks(seq: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def post_transaction(
    session: Session, txn: TransactionIn, *, rules: Rules, actor: str, now: dt.datetime | None = None
) -> PostingResult:
    (outcome,) = post_transactions(session, [txn], rules=rules, actor=actor, now=now)
    if isinstance(outcome, LoyaltyError):
        raise outcome
    return outcome


# ---------------------------------------------------------------------------------------------------
# Spending points: lots, redemptions, holds
# ---------------------------------------------------------------------------------------------------


def _active_held(session: Session, member_id: str, now: dt.datetime, exclude: str | None = None) -> int:
    q = select(func.coalesce(func.sum(Hold.points), 0)).where(
        Hold.member_id == member_id, Hold.status == "active", Hold.expires_at > now
    )
    if exclude is not None:
        q = q.where(Hold.id != exclude)
    return int(session.scalar(q) or 0)


def _spendable(session: Session, member_id: str, now: dt.datetime) -> int:
    q = select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.member_id == member_id, Lot.remaining > 0, Lot.expires_at > now
    )
    return int(session.scalar(q) or 0)


def _take_from_lots(
    session: Session, member_id: str, points: int, *, now: dt.datetime | None, first_entry: int | None = None
) -> int:
    """Consume up to ``points`` from the member's lots, earliest expiry first; returns what was taken.

    With ``now`` only unexpired lots are used (spending); without it every lot with points left counts
    (claw-backs take whatever the balance holds). ``first_entry`` drains that entry's own lot first.
    """
    q = select(Lot.id, Lot.remaining, Lot.entry_id).where(Lot.member_id == member_id, Lot.remaining > 0)
    if now is not None:
        q = q.where(Lot.expires_at > now)
    lots = list(session.execute(q.order_by(Lot.expires_at, Lot.id)).all())
    if first_entry is not None:
        lots.sort(key=lambda r: r.entry_id != first_entry)
    left = points
    changes = []
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        left -= take
        changes.append({"lid": lot.id, "r": lot.remaining - take})
    if changes:
        session.execute(
            update(LOTS).where(LOTS.c.id == bindparam("lid")).values(remaining=bindparam("r")),
            changes,
        )
    return points - left


def _check_points(points: object, name: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    if points <= 0 or points > 10**12:
        raise InvalidInput(f"{name} must be between 1 and 10^12, got {points}", field=name)
    return points


def _check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise InvalidInput(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}", field="reward")
    return reward


def redeem(
    session: Session,
    *,
    redemption_id: str,
    customer_id: str,
    points: int,
    reward: str,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Spend points at once, earliest-expiring lots first; a short balance is a 409, never a negative one."""
    now = now or utcnow()
    _check_id(redemption_id, "redemption_id", 128)
    _check_id(customer_id, "customer_id")
    _check_points(points)
    _check_reward(reward)
    req = request_hash("redeem", customer_id, points, reward)
    m = _lock_one(session, customer_id, create=False, now=now)
    if (prior := _replay(session, "redeem", redemption_id, req)) is not None:
        return prior
    available = _spendable(session, m.id, now) - _active_held(session, m.id, now)
    if points > available:
        raise InsufficientPoints(
            f"customer {customer_id!r} has {max(available, 0)} points available, {points} requested",
            available=max(available, 0),
            requested=points,
        )
    recently = int(
        session.scalar(
            select(func.coalesce(func.sum(Lot.points), 0)).where(
                Lot.member_id == m.id, Lot.earned_at > now - rules.fraud.rapid_redeem_window
            )
        )
        or 0
    )
    reason = fraud_reason_for_redemption(rules.fraud, points=points, recently_earned=recently)
    entry = PendingEntry(
        _entry_row(
            "redeem",
            redemption_id,
            m.id,
            status="held" if reason else "posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=points,
            reason=reason,
            detail={"reward": reward},
        )
    )
    if reason is None:
        _take_from_lots(session, m.id, points, now=now)
        entry.lines += [("points", m.id, -points), ("redeemed", None, points)]
        m.balance -= points
        _save_member(session, m)
    response = {
        "redemption_id": redemption_id,
        "customer_id": m.id,
        "points": points,
        "reward": reward,
        "status": entry.row["status"],
        "balance": m.balance,
    }
    if reason:
        response["reason"] = reason
        log.warning("redemption held: customer=%s redemption=%s %s", m.id, redemption_id, reason)
    entry.row["response"] = response
    _write_entries(session, [entry])
    return response


def create_hold(
    session: Session,
    *,
    hold_id: str,
    customer_id: str,
    points: int,
    reward: str,
    rules: Rules,
    actor: str,
    timeout_seconds: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Reserve points at a till: they stop being spendable until the hold is captured, voided or times out."""
    now = now or utcnow()
    _check_id(hold_id, "hold_id", 128)
    _check_id(customer_id, "customer_id")
    _check_points(points)
    _check_reward(reward)
    if timeout_seconds is not None and not 1 <= timeout_seconds <= 86400:
        raise InvalidInput("timeout_seconds must be between 1 and 86400", field="timeout_seconds")
    timeout = dt.timedelta(seconds=timeout_seconds) if timeout_seconds else rules.hold_timeout
    req = request_hash("hold", customer_id, points, reward, timeout_seconds)
    m = _lock_one(session, customer_id, create=False, now=now)
    if (prior := _replay(session, "hold", hold_id, req)) is not None:
        return prior
    available = _spendable(session, m.id, now) - _active_held(session, m.id, now)
    if points > available:
        raise InsufficientPoints(
            f"customer {customer_id!r} has {max(available, 0)} points available, {points} requested",
            available=max(available, 0),
            requested=points,
        )
    expires = now + timeout
    session.add(
        Hold(
            id=hold_id,
            member_id=m.id,
            points=points,
            reward=reward,
            status="active",
            created_at=now,
            expires_at=expires,
        )
    )
    response = {
        "hold_id": hold_id,
        "customer_id": m.id,
        "points": points,
        "status": "active",
        "expires_at": expires.isoformat(),
        "available": available - points,
        "balance": m.balance,
    }
    _write_entries(
        session,
        [
            PendingEntry(
                _entry_row(
                    "hold",
                    hold_id,
                    m.id,
                    status="posted",
                    effective_at=now,
                    now=now,
                    actor=actor,
                    req_hash=req,
                    response=response,
                    points=points,
                    detail={"reward": reward},
                )
            )
        ],
    )
    session.flush()
    return response


def _settle_hold(
    session: Session, hold_id: str, *, capture: bool, actor: str, now: dt.datetime
) -> dict[str, Any]:
    _check_id(hold_id, "hold_id", 128)
    kind = "capture" if capture else "void"
    member_id = session.scalar(select(Hold.member_id).where(Hold.id == hold_id))
    if member_id is None:
        raise NotFound(f"unknown hold {hold_id!r}", code="unknown_hold")
    m = _lock_one(session, member_id, create=False, now=now)
    req = request_hash(kind, hold_id)
    if (prior := _replay(session, kind, hold_id, req)) is not None:
        return prior
    hold = session.execute(select(Hold).where(Hold.id == hold_id)).scalar_one()
    timed_out = hold.status == "active" and hold.expires_at <= now
    if hold.status != "active" or (capture and timed_out):
        state = "timed out" if timed_out else hold.status
        raise Conflict(f"hold {hold_id!r} is {state} and cannot be {kind}d", code="hold_not_active")
    entry = PendingEntry(
        _entry_row(
            kind,
            hold_id,
            m.id,
            status="posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=hold.points,
            detail={"reward": hold.reward},
        )
    )
    if capture:
        available = _spendable(session, m.id, now) - _active_held(session, m.id, now, exclude=hold_id)
        if hold.points > available:
            raise InsufficientPoints(
                f"hold {hold_id!r} needs {hold.points} points "
                f"but only {max(available, 0)} are still spendable",
                available=max(available, 0),
                requested=hold.points,
            )
        _take_from_lots(session, m.id, hold.points, now=now)
        entry.lines += [("points", m.id, -hold.points), ("redeemed", None, hold.points)]
        m.balance -= hold.points
        _save_member(session, m)
    hold.status = "captured" if capture else "voided"
    hold.settled_at = now
    response = {
        "hold_id": hold_id,
        "customer_id": m.id,
        "points": hold.points,
        "status": hold.status,
        "balance": m.balance,
    }
    entry.row["response"] = response
    _write_entries(session, [entry])
    session.flush()
    return response


def capture_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=True, actor=actor, now=now or utcnow())


def void_hold(
    session: Session, *, hold_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    return _settle_hold(session, hold_id, capture=False, actor=actor, now=now or utcnow())


def void_timed_out_holds(session: Session, *, now: dt.datetime | None = None) -> int:
    """Mark holds past their timeout as voided. Spendability never waits for this: it ignores them already."""
    now = now or utcnow()
    holds = (
        session.execute(select(Hold).where(Hold.status == "active", Hold.expires_at <= now).order_by(Hold.id))
        .scalars()
        .all()
    )
    pending = []
    for h in holds:
        h.status = "voided"
        h.settled_at = h.expires_at
        resp = {
            "hold_id": h.id,
            "customer_id": h.member_id,
            "points": h.points,
            "status": "voided",
            "reason": "timeout",
        }
        pending.append(
            PendingEntry(
                _entry_row(
                    "void",
                    h.id,
                    h.member_id,
                    status="posted",
                    effective_at=h.expires_at,
                    now=now,
                    actor="system:timeout",
                    req_hash=request_hash("void", h.id),
                    response=resp,
                    points=h.points,
                    reason="timeout",
                )
            )
        )
    _write_entries(session, pending)
    session.flush()
    return len(holds)


# ---------------------------------------------------------------------------------------------------
# Reversals, reviews of held postings, activities
# ---------------------------------------------------------------------------------------------------


def _credited_points(session: Session, original: Entry) -> int:
    if original.status == "posted":
        return original.points
    review = session.execute(
        select(Entry).where(Entry.kind == "review", Entry.ext_id == original.ext_id)
    ).scalar()
    return review.points if review is not None and review.status == "posted" else 0


def reverse(
    session: Session,
    *,
    transaction_id: str,
    reversal_id: str,
    amount: Decimal | None,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Claw back the points of a refunded transaction (all of it, or in proportion to a partial refund).

    The original's own lot goes first, then the earliest-expiring ones; what the balance cannot cover is kept
    as debt, which later earnings settle before anything reaches the balance.
    """
    now = now or utcnow()
    _check_id(transaction_id, "transaction_id", 128)
    _check_id(reversal_id, "reversal_id", 128)
    refund = _check_amount(amount) if amount is not None else None
    original = session.execute(
        select(Entry).where(Entry.kind == "earn", Entry.ext_id == transaction_id)
    ).scalar()
    if original is None or original.member_id is None or original.amount is None:
        raise NotFound(f"unknown transaction {transaction_id!r}", code="unknown_transaction")
    m = _lock_one(session, original.member_id, create=False, now=now)
    req = request_hash("reverse", transaction_id, refund)
    if (prior := _replay(session, "reverse", reversal_id, req)) is not None:
        return prior
    before = session.execute(
        select(func.coalesce(func.sum(Entry.amount), 0)).where(
            Entry.kind == "reverse", Entry.parent_id == original.id
        )
    ).scalar_one()
    refunded_before = Decimal(before or 0)
    left = original.amount - refunded_before
    if refund is None:
        refund = left
    if left <= 0:
        raise Conflict(f"transaction {transaction_id!r} is already fully reversed", code="already_reversed")
    if refund > left:
        raise InvalidInput(f"amount {refund} exceeds what is left to refund ({left})", field="amount")
    pts = reversal_points(_credited_points(session, original), original.amount, refunded_before, refund)
    taken = _take_from_lots(session, m.id, min(pts, m.balance), now=None, first_entry=original.id)
    shortfall = pts - taken
    entry = PendingEntry(
        _entry_row(
            "reverse",
            reversal_id,
            m.id,
            status="posted",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=pts,
            parent_id=original.id,
            amount=refund,
            txn_type=original.txn_type,
            currency=original.currency,
        )
    )
    if pts:
        if taken:
            entry.lines.append(("points", m.id, -taken))
        if shortfall:
            entry.lines.append(("debt", m.id, -shortfall))
        entry.lines.append(("reversed", None, pts))
        m.balance -= taken
        m.debt += shortfall
        _save_member(session, m)
    if original.status == "posted" and original.txn_type in rules.qualifying_types:
        month = original.effective_at.date().replace(day=1)
        session.execute(
            update(SpendMonth)
            .where(SpendMonth.member_id == m.id, SpendMonth.month == month)
            .values(amount=SpendMonth.amount - refund)
        )
    response = {
        "reversal_id": reversal_id,
        "transaction_id": transaction_id,
        "customer_id": m.id,
        "amount": str(refund),
        "points_reversed": pts,
        "debt": m.debt,
        "balance": m.balance,
    }
    entry.row["response"] = response
    _write_entries(session, [entry])
    return response


def review_held(
    session: Session,
    *,
    transaction_id: str,
    approve: bool,
    rules: Rules,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Release a held posting (credited as of now) or confirm its rejection; once per posting."""
    now = now or utcnow()
    original = session.execute(
        select(Entry).where(Entry.kind == "earn", Entry.ext_id == transaction_id)
    ).scalar()
    if original is None or original.member_id is None:
        raise NotFound(f"unknown transaction {transaction_id!r}", code="unknown_transaction")
    m = _lock_one(session, original.member_id, create=False, now=now)
    req = request_hash("review", transaction_id, approve)
    if (prior := _replay(session, "review", transaction_id, req)) is not None:
        return prior
    if original.status != "held":
        raise Conflict(f"transaction {transaction_id!r} is not held", code="not_held")
    reversed_any = session.scalar(
        select(func.count()).where(Entry.kind == "reverse", Entry.parent_id == original.id)
    )
    if approve and reversed_any:
        raise Conflict(
            f"transaction {transaction_id!r} was reversed while held; it cannot be released",
            code="reversed_while_held",
        )
    entry = PendingEntry(
        _entry_row(
            "review",
            transaction_id,
            m.id,
            status="posted" if approve else "rejected",
            effective_at=now,
            now=now,
            actor=actor,
            req_hash=req,
            response={},
            points=original.points if approve else 0,
            parent_id=original.id,
        )
    )
    if approve and original.points:
        _credit(m, original.points, entry, rules, now)
        _save_member(session, m)
    response = {
        "transaction_id": transaction_id,
        "customer_id": m.id,
        "status": "released" if approve else "rejected",
        "points": entry.row["points"],
        "balance": m.balance,
    }
    entry.row["response"] = response
    _write_entries(session, [entry])
    return response


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
    _check_id(activity_id, "activity_id", 128)
    _check_id(customer_id, "customer_id")
    if kind not in rules.activities:
        raise InvalidInput(
            f"kind must be one of {', '.join(sorted(rules.activities))}, got {kind!r}", field="kind"
        )
    req = request_hash("activity", customer_id, kind)
    m = _lock_one(session, customer_id, create=True, now=now)
    if (prior := _replay(session, "activity", activity_id, req)) is not None:
        return prior
    points = rules.activities[kind]
    entry = PendingEntry(
        _entry_row(
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
        _credit(m, points, entry, rules, now)
        _save_member(session, m)
    response = {
        "activity_id": activity_id,
        "customer_id": m.id,
        "kind": kind,
        "points": points,
        "balance": m.balance,
    }
    entry.row["response"] = response
    _write_entries(session, [entry])
    return response


# ---------------------------------------------------------------------------------------------------
# Expiry
# ---------------------------------------------------------------------------------------------------


def expire_due(
    session: Session,
    *,
    as_of: dt.datetime,
    member_ids: Sequence[str] | None = None,
    actor: str = "system:expiry",
) -> tuple[int, int]:
    """Expire what is left of every lot whose expiry is at or before ``as_of``; returns (lots, points).

    Idempotent: an expired lot has nothing left, and its expiry entry is unique per lot. The entry is dated at
    the lot's expiry so that balances as of past dates stay right whenever the run happens.
    """
    if member_ids is None:
        member_ids = list(
            session.scalars(
                select(Lot.member_id).where(Lot.remaining > 0, Lot.expires_at <= as_of).distinct()
            )
        )
    members = _lock_members(session, member_ids, create=False, now=as_of)
    if not members:
        return 0, 0
    lots = session.execute(
        select(Lot.id, Lot.member_id, Lot.remaining, Lot.expires_at)
        .where(Lot.member_id.in_(list(members)), Lot.remaining > 0, Lot.expires_at <= as_of)
        .order_by(Lot.member_id, Lot.expires_at, Lot.id)
    ).all()
    pending = []
    for lot in lots:
        m = members[lot.member_id]
        m.balance -= lot.remaining
        m.dirty = True
        resp = {
            "lot_id": lot.id,
            "customer_id": m.id,
            "points": lot.remaining,
            "expired_at": lot.expires_at.isoformat(),
        }
        entry = PendingEntry(
            _entry_row(
                "expire",
                f"lot:{lot.id}",
                m.id,
                status="posted",
                effective_at=lot.expires_at,
                now=utcnow(),
                actor=actor,
                req_hash=request_hash("expire", lot.id),
                response=resp,
                points=lot.remaining,
            )
        )
        entry.lines += [("points", m.id, -lot.remaining), ("expired", None, lot.remaining)]
        pending.append(entry)
    if lots:
        session.execute(
            update(LOTS).where(LOTS.c.id == bindparam("lid")).values(remaining=0),
            [{"lid": lot.id} for lot in lots],
        )
    _write_entries(session, pending)
    _flush_members(session, members.values())
    return len(lots), sum(lot.remaining for lot in lots)


def members_with_due_lots(session: Session, *, as_of: dt.datetime) -> list[str]:
    return list(
        session.scalars(
            select(Lot.member_id)
            .where(Lot.remaining > 0, Lot.expires_at <= as_of)
            .distinct()
            .order_by(Lot.member_id)
        )
    )


# ---------------------------------------------------------------------------------------------------
# Offers catalogue and activations
# ---------------------------------------------------------------------------------------------------

OFFER_KINDS = ("multiplier", "bonus_points", "cashback", "informational")


def upsert_offer(session: Session, spec: dict[str, Any], *, now: dt.datetime | None = None) -> Offer:
    """Create or replace an offer of the catalogue (activations keep pointing at it by id)."""
    now = now or utcnow()
    oid = _check_id(spec.get("id"), "id")
    kind = spec.get("kind")
    if kind not in OFFER_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(OFFER_KINDS)}, got {kind!r}", field="kind")
    duration = spec.get("duration_days")
    if not isinstance(duration, int) or not 1 <= duration <= 366:
        raise InvalidInput(
            "duration_days must be a whole number of days between 1 and 366", field="duration_days"
        )
    multiplier = Decimal(str(spec.get("multiplier", 1)))
    if kind == "multiplier" and not Decimal(1) <= multiplier <= Decimal(10):
        raise InvalidInput("multiplier must be between 1 and 10", field="multiplier")
    offer = session.get(Offer, oid) or Offer(id=oid, created_at=now)
    offer.name = str(spec.get("name") or oid)
    offer.kind = kind
    offer.multiplier = multiplier
    offer.bonus_points = int(spec.get("bonus_points", 0))
    offer.threshold = Decimal(str(spec["threshold"])) if spec.get("threshold") is not None else None
    offer.categories = spec.get("categories")
    offer.txn_types = spec.get("txn_types")
    offer.channels = spec.get("channels")
    offer.duration_days = duration
    offer.cost = Decimal(str(spec.get("cost", 0)))
    offer.value = Decimal(str(spec.get("value", 0)))
    offer.min_tier = spec.get("min_tier")
    offer.active = bool(spec.get("active", True))
    session.add(offer)
    session.flush()
    return offer


def activate_offer(
    session: Session,
    *,
    offer_id: str,
    customer_id: str,
    decision_id: str | None,
    rules: Rules,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Switch an offer on for a customer. Asking again while it is active returns the same activation."""
    now = now or utcnow()
    _check_id(customer_id, "customer_id")
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"unknown offer {offer_id!r}", code="unknown_offer")
    if not offer.active:
        raise Conflict(f"offer {offer_id!r} is withdrawn", code="offer_inactive")
    m = _lock_one(session, customer_id, create=True, now=now)
    if offer.min_tier is not None:
        names = [t.name for t in rules.tiers]
        tier = customer_tier(session, m.id, now, rules)
        if offer.min_tier in names and names.index(tier) < names.index(offer.min_tier):
            raise Conflict(
                f"offer {offer_id!r} needs tier {offer.min_tier}, customer is {tier}", code="not_eligible"
            )
    current = session.execute(
        select(Activation)
        .where(Activation.member_id == m.id, Activation.offer_id == offer_id, Activation.expires_at > now)
        .order_by(Activation.id.desc())
    ).scalar()
    if current is None:
        current = Activation(
            ext_id=f"{offer_id}:{m.id}:{now.isoformat()}",
            offer_id=offer_id,
            member_id=m.id,
            decision_id=decision_id,
            activated_at=now,
            expires_at=now + dt.timedelta(days=offer.duration_days),
        )
        session.add(current)
        session.flush()
    return _activation_view(current, offer)


def _activation_view(a: Activation, offer: Offer) -> dict[str, Any]:
    return {
        "activation_id": a.id,
        "offer_id": a.offer_id,
        "customer_id": a.member_id,
        "decision_id": a.decision_id,
        "kind": offer.kind,
        "multiplier": float(offer.multiplier),
        "activated_at": a.activated_at.isoformat(),
        "expires_at": a.expires_at.isoformat(),
        "completed_at": a.completed_at.isoformat() if a.completed_at else None,
    }


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def customer_tier(session: Session, member_id: str, at: dt.datetime, rules: Rules) -> str:
    first, last = tier_window(at)
    spend = session.scalar(
        select(func.coalesce(func.sum(SpendMonth.amount), 0)).where(
            SpendMonth.member_id == member_id, SpendMonth.month >= first, SpendMonth.month <= last
        )
    )
    return tier_for(Decimal(spend or 0), rules.tiers).name


def customer_view(
    session: Session,
    customer_id: str,
    *,
    rules: Rules,
    now: dt.datetime | None = None,
    expiring_limit: int = 12,
) -> dict[str, Any]:
    now = now or utcnow()
    m = session.get(Member, customer_id)
    if m is None:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    expiring = session.execute(
        select(Lot.expires_at, func.sum(Lot.remaining).label("points"))
        .where(Lot.member_id == m.id, Lot.remaining > 0)
        .group_by(Lot.expires_at)
        .order_by(Lot.expires_at)
        .limit(expiring_limit)
    ).all()
    offers = session.execute(
        select(Activation, Offer)
        .join(Offer, Offer.id == Activation.offer_id)
        .where(Activation.member_id == m.id, Activation.activated_at <= now, Activation.expires_at > now)
        .order_by(Activation.expires_at)
    ).all()
    held = _active_held(session, m.id, now)
    return {
        "customer_id": m.id,
        "balance": m.balance,
        "available": max(_spendable(session, m.id, now) - held, 0),
        "held": held,
        "debt": m.debt,
        "tier": customer_tier(session, m.id, now, rules),
        "expiring": [{"points": int(r.points), "expires_at": r.expires_at.isoformat()} for r in expiring],
        "active_offers": [_activation_view(a, o) for a, o in offers],
        "member_since": m.created_at.isoformat(),
    }


def balance_as_of(session: Session, customer_id: str, as_of: dt.datetime) -> dict[str, Any]:
    """The member's points and debt as the journal stood at ``as_of`` (statements and audits)."""
    if session.get(Member, customer_id) is None:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    rows = session.execute(
        select(Line.account, func.coalesce(func.sum(Line.points), 0))
        .where(
            Line.member_id == customer_id, Line.account.in_(["points", "debt"]), Line.effective_at <= as_of
        )
        .group_by(Line.account)
    ).all()
    sums = {acc: int(total) for acc, total in rows}
    return {
        "customer_id": customer_id,
        "as_of": as_of.isoformat(),
        "balance": sums.get("points", 0),
        "debt": -sums.get("debt", 0),
    }


def check_invariants(session: Session) -> list[str]:
    """Every way the ledger could disagree with itself; empty when all is well (used by tests and audits)."""
    problems: list[str] = []
    for eid, total in session.execute(
        select(Line.entry_id, func.sum(Line.points))
        .group_by(Line.entry_id)
        .having(func.sum(Line.points) != 0)
    ):
        problems.append(f"entry {eid} lines sum to {total}")
    lines = dict(
        session.execute(
            select(Line.member_id, func.sum(Line.points))
            .where(Line.account == "points")
            .group_by(Line.member_id)
        ).all()
    )
    debts = dict(
        session.execute(
            select(Line.member_id, func.sum(Line.points))
            .where(Line.account == "debt")
            .group_by(Line.member_id)
        ).all()
    )
    lots = dict(session.execute(select(Lot.member_id, func.sum(Lot.remaining)).group_by(Lot.member_id)).all())
    for m in session.execute(select(Member)).scalars():
        if m.balance < 0 or m.debt < 0:
            problems.append(f"member {m.id} negative balance {m.balance} or debt {m.debt}")
        if int(lines.get(m.id, 0)) != m.balance:
            problems.append(f"member {m.id} balance {m.balance} != lines {lines.get(m.id, 0)}")
        if int(lots.get(m.id, 0)) != m.balance:
            problems.append(f"member {m.id} balance {m.balance} != lots {lots.get(m.id, 0)}")
        if -int(debts.get(m.id, 0)) != m.debt:
            problems.append(f"member {m.id} debt {m.debt} != debt lines {debts.get(m.id, 0)}")
    return problems


__all__ = [
    "OFFER_KINDS",
    "Outcome",
    "PostingResult",
    "TransactionIn",
    "activate_offer",
    "award_activity",
    "balance_as_of",
    "capture_hold",
    "check_invariants",
    "create_hold",
    "customer_tier",
    "customer_view",
    "expire_due",
    "in_transaction",
    "members_with_due_lots",
    "post_transaction",
    "post_transactions",
    "redeem",
    "reverse",
    "review_held",
    "upsert_offer",
    "utcnow",
    "validate_transaction",
    "void_hold",
    "void_timed_out_holds",
]
