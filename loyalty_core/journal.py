"""Shared machinery of every ledger operation: validation of ids and amounts, idempotency, member locks,
retries, and writing balanced journal entries with their lines and lots.

Concurrency rule: a member's row is locked (``SELECT ... FOR UPDATE``; SQLite serialises writers with
``BEGIN IMMEDIATE``) before anything about that member is read, so two requests for the same member never
interleave, and the idempotency check happens under that lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, Table, bindparam, event, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from loyalty_core import bounds
from loyalty_core.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from loyalty_core.rules import (
    REWARDS,
    Rules,
)
from loyalty_core.schema import Activation, Entry, Hold, Line, Lot, Member, OfferEvent

log = logging.getLogger(__name__)

# Core tables for executemany statements (the ORM would switch them to per-primary-key bulk mode).
MEMBERS = cast(Table, Member.__table__)
LOTS = cast(Table, Lot.__table__)
ACTIVATIONS = cast(Table, Activation.__table__)
OFFER_EVENTS = cast(Table, OfferEvent.__table__)
ENTRIES = cast(Table, Entry.__table__)
LINES = cast(Table, Line.__table__)

MAX_AMOUNT = bounds.MAX_AMOUNT  # 10^12 in the currency's units: anything larger is a caller's bug
MAX_ID_LEN = bounds.CUSTOMER_ID_LEN
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
CENT = Decimal("0.01")

T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_id(value: object, name: str, max_len: int = MAX_ID_LEN) -> str:
    """The ledger's own check of an id (it also serves the importers); the API's schemas apply the same."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    if (problem := bounds.id_problem(value, max_len)) is not None:
        raise InvalidInput(f"{name} {problem}", field=name)
    return value


def check_amount(value: object, name: str = "amount") -> Decimal:
    """A positive amount of at most 2 decimals, in the grammar of ``bounds.parse_money`` (no rounding)."""
    try:
        amount = bounds.parse_money(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} {exc}", field=name) from None
    if amount <= 0:
        raise InvalidInput(f"{name} must be positive, got {amount}", field=name)
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"{name} {amount} is beyond any plausible transaction", field=name)
    return amount.quantize(CENT)


def check_points(points: object, name: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    if points <= 0 or points > bounds.MAX_POINTS:
        raise InvalidInput(f"{name} must be between 1 and {bounds.MAX_POINTS}, got {points}", field=name)
    return points


def check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise InvalidInput(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}", field="reward")
    return reward


def request_hash(*parts: object) -> str:
    """A stable fingerprint of a request body: a replay must match it exactly, field by field."""
    canon = "\x1f".join(
        "" if p is None else p.isoformat() if isinstance(p, dt.datetime) else str(p) for p in parts
    )
    return hashlib.sha256(canon.encode()).hexdigest()


_RETRY_SQLSTATES = {"40001", "40P01", "23505"}


def retryable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:  # the pool handed out a dead connection; a fresh one is used next
        return True
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRY_SQLSTATES:
        return True
    if isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(orig):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(orig)


def in_transaction(
    engine: Engine, work: Callable[[Session], T], *, attempts: int = 8, defer_writes: bool = False
) -> T:
    """Run ``work`` in one transaction, retrying races that the database settled by refusing one side.

    A retry is safe because every operation is idempotent on the caller's id: the second attempt sees what
    the winner wrote and answers a replay or a conflict instead of writing twice.

    ``defer_writes``: journal writes wait for the end of ``work`` and travel with the COMMIT in one round
    trip (PostgreSQL). Only for work that reads nothing back after writing, such as a batch of postings:
    with the member locks and reads also sharing one round trip, a posting batch costs two round trips
    instead of six, which is most of what a small batch costs.
    """
    for attempt in range(attempts):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                if defer_writes:
                    session.info[_DEFER] = True
                result = work(session)
                run_deferred(session, commit=True)
                return result
        except DBAPIError as exc:
            if attempt == attempts - 1 or not retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.002 * (2**attempt)))
    raise AssertionError("unreachable")


_REPLAYED = "loyalty.replayed"


def mark_replayed(session: Session) -> None:
    """Note that this transaction answered from what an earlier request recorded, not from new work.

    Callers must be able to tell a replay from a first answer (``Idempotent-Replayed``), whichever operation
    answered: ``replay`` marks every stored-entry answer; operations idempotent in other ways (an activation
    asked for again) call this themselves.
    """
    session.info[_REPLAYED] = True


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What ``run_write`` returns: the work's result, and whether it was a replay of an earlier request."""

    value: T
    replayed: bool


def run_write(engine: Engine, work: Callable[[Session], T], **options: Any) -> Outcome[T]:
    """``in_transaction`` that also reports whether the answer was a replay (see ``mark_replayed``).

    Only the attempt that committed counts: each attempt has a fresh session, so a retry that turned a first
    write into a replay of the race's winner reports the replay.
    """
    replayed = False

    def tracked(session: Session) -> T:
        nonlocal replayed
        result = work(session)
        replayed = bool(session.info.get(_REPLAYED, False))
        return result

    value = in_transaction(engine, tracked, **options)
    return Outcome(value, replayed)


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


_STATE = (
    MEMBERS.c.id,
    MEMBERS.c.balance,
    MEMBERS.c.debt,
    MEMBERS.c.txn_count,
    MEMBERS.c.amount_sum,
    MEMBERS.c.spend,
    MEMBERS.c.recent,
    MEMBERS.c.offers_until,
)


def _state(r: Any) -> MemberState:
    return MemberState(
        r.id,
        r.balance,
        r.debt,
        r.txn_count,
        r.amount_sum,
        {k: Decimal(v) for k, v in (r.spend or {}).items()},
        list(r.recent or ()),
        r.offers_until,
    )


def dialect_insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def lock_members(
    session: Session, ids: Iterable[str], *, create: bool, now: dt.datetime
) -> dict[str, MemberState]:
    """Lock members in id order (a fixed order, so concurrent batches cannot deadlock), enrolling new ones.

    Enrolling and locking is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: a new member
    is inserted, an existing one is locked by the no-op update, and either way its state comes back.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found: dict[str, MemberState] = {}
    for part in chunks(wanted, 1000):  # SQLite allows 32,766 bound parameters per statement
        if create:
            params: dict[str, Any] = {f"id{i}": m for i, m in enumerate(part)}
            params["at"] = now
            rows = session.connection().execute(_enrol_statement(len(part)), params).all()
        else:
            q = select(*_STATE).where(MEMBERS.c.id.in_(part)).order_by(MEMBERS.c.id).with_for_update()
            rows = session.execute(q).all()
        found.update((r.id, _state(r)) for r in rows)
    return found


# New members are inserted, then every member of the batch is locked in id order. Unlike the no-op
# ``DO UPDATE`` that SQLite's path uses, ``FOR UPDATE`` writes no new row version of an existing member, who
# is updated once at the end of the posting anyway.
_ENROL_PG = (
    "INSERT INTO members (id, created_at, balance, debt, txn_count, amount_sum, spend, recent) "
    "SELECT u.id, %s, 0, 0, 0, 0, '{}', '[]' "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, n) ORDER BY u.n "
    "ON CONFLICT (id) DO NOTHING"
)
_LOCK_PG = (
    "SELECT id, balance, debt, txn_count, amount_sum, spend, recent, offers_until FROM members "
    "WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
)


def enrol_and_read(
    session: Session, ids: Iterable[str], *, now: dt.datetime, also: tuple[str, Sequence[Any]]
) -> tuple[dict[str, MemberState], list[Any]] | None:
    """On PostgreSQL, ``lock_members(create=True)`` and the read ``also`` (driver SQL) in one round trip.

    None elsewhere: the caller then locks and reads in turn (SQLite has no round trips to save).
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    wanted = sorted(set(ids))
    _, members_rows, also_rows = pg_fetch_together(
        session, [(_ENROL_PG, (now, wanted)), (_LOCK_PG, (wanted,)), also]
    )
    members = {}
    for r in members_rows:
        spend, recent = (json.loads(v) if isinstance(v, str) else v for v in (r[5], r[6]))
        offers_until = r[7].astimezone(dt.UTC) if r[7] is not None else None
        members[r[0]] = MemberState(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            {k: Decimal(v) for k, v in (spend or {}).items()},
            list(recent or ()),
            offers_until,
        )
    return members, also_rows


_ENROL: dict[int, Any] = {}


def _enrol_statement(n: int) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` for ``n`` members, built once per size.

    Plain SQL that PostgreSQL and SQLite (3.35+) both accept; building it through the expression language on
    every posting cost more than running it. The no-op update is what locks an existing member's row.
    """
    stmt = _ENROL.get(n)
    if stmt is None:
        values = ", ".join(f"(:id{i}, :at, 0, 0, 0, 0, '{{}}', '[]')" for i in range(n))
        sql = (  # only numbered placeholders are interpolated; ids travel as bound parameters
            "INSERT INTO members (id, created_at, balance, debt, txn_count, amount_sum, spend, recent) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (id) DO UPDATE SET id = excluded.id "
            "RETURNING id, balance, debt, txn_count, amount_sum, spend, recent, offers_until"
        )
        stmt = text(sql).bindparams(bindparam("at", type_=MEMBERS.c.created_at.type)).columns(*_STATE)
        _ENROL[n] = stmt
    return stmt


def funnel_event(
    activation_id: int,
    event: str,
    customer_id: str,
    offer_id: str,
    at: dt.datetime,
    decision_id: str | None,
) -> dict[str, Any]:
    """An ``offer_events`` row the ledger writes itself (activated, completed), keyed by the activation.

    The ledger decides activations and completions, so it records them in the offer funnel too: features and
    the next training run then see live outcomes exactly like imported ones, and a replay adds nothing.
    """
    return {
        "ext_id": f"activation:{activation_id}:{event}",
        "customer_id": customer_id,
        "offer_id": offer_id,
        "event": event,
        "occurred_at": at,
        "channel": None,
        "decision_id": decision_id,
        "value": None,
    }


def upsert(session: Session, table: Any, keys: list[str], set_cols: list[str]) -> Any:
    stmt = dialect_insert(session, table)
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in set_cols})


def lock_one(session: Session, customer_id: str, *, create: bool, now: dt.datetime) -> MemberState:
    members = lock_members(session, [customer_id], create=create, now=now)
    if customer_id not in members:
        raise NotFound(f"unknown customer {customer_id!r}", code="unknown_customer")
    return members[customer_id]


def replay(session: Session, kind: str, ext_id: str, req_hash: str) -> dict[str, Any] | None:
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
    mark_replayed(session)
    return dict(row.response)


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


def credit(
    m: MemberState,
    points: int,
    entry: PendingEntry,
    rules: Rules,
    at: dt.datetime,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Book earned points: first settle the member's debt, the rest becomes a new lot. Returns lot points.

    ``at`` dates the new lot and its lines; the settlement is dated ``now`` (the recording instant, when the
    debt is known to exist), which differs from ``at`` only for a back-dated earning.
    """
    settle = min(points, m.debt)
    to_balance = points - settle
    settled_at = None if now is None or now <= at else now
    if settle:
        entry.lines.append(("programme", None, -settle, settled_at))
        entry.lines.append(("debt", m.id, settle, settled_at))
        m.debt -= settle
    if to_balance:
        entry.lines.append(("programme", None, -to_balance, None))
        entry.lines.append(("points", m.id, to_balance, None))
        entry.lot = (m.id, to_balance, at, at + rules.lot_lifetime)
        m.balance += to_balance
    m.dirty = True
    return to_balance


_INSERT_PLANS: dict[tuple[str, str], tuple[str, str, list[str], list[Any]]] = {}
_UPDATE_MEMBERS: dict[str, tuple[str, list[Any]]] = {}
_MEMBER_COLS = ("balance", "debt", "txn_count", "amount_sum", "spend", "recent", "id")
# One UPDATE for every member of a batch (PostgreSQL): the rows come in as arrays, one per column.
_UPDATE_MEMBERS_PG = (
    "UPDATE members AS m SET balance = v.balance, debt = v.debt, txn_count = v.txn_count, "
    "amount_sum = v.amount_sum, spend = v.spend::json, recent = v.recent::json "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::integer[], %s::numeric[], %s::text[], %s::text[], "
    "%s::text[]) AS v(balance, debt, txn_count, amount_sum, spend, recent, id) WHERE m.id = v.id"
)
# From this many rows in one statement, PostgreSQL gets them by COPY (bulk loads) rather than row by row.
COPY_MIN_ROWS = 64


@dataclass(slots=True)
class _Statement:
    sql: str
    params: list[tuple[Any, ...]]
    copy_sql: str | None = None  # the same insert as a COPY, for many rows on PostgreSQL


class Writes:
    """Statements sent to the database together: one round trip on PostgreSQL (psycopg pipeline mode).

    The ledger writes four rows per posting; SQLAlchemy's per-statement parameter machinery cost more than
    the database on this path, so statement texts and column converters are prepared once per table and the
    rows go straight to the driver. Large batches (bulk ingest) go by COPY instead, which PostgreSQL takes
    an order of magnitude faster than row-by-row inserts. Driver errors are re-raised as SQLAlchemy's, so
    ``in_transaction`` retries them like any other.
    """

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()
        self.dialect = self.conn.dialect
        self.items: list[_Statement] = []

    def _mark(self) -> str:
        return "?" if self.dialect.paramstyle == "qmark" else "%s"

    def insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """Every row must carry every column the first one has (the entry builders guarantee it)."""
        if not rows:
            return
        key = (self.dialect.name, table.name)
        plan = _INSERT_PLANS.get(key)
        if plan is None:
            cols = [c.name for c in table.columns if c.name in rows[0]]
            values = ", ".join([self._mark()] * len(cols))
            # Names come from our own schema, never from input, so building the text is safe.
            sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({values})"  # noqa: S608
            copy_sql = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
            plan = (sql, copy_sql, cols, [table.c[c].type._cached_bind_processor(self.dialect) for c in cols])
            _INSERT_PLANS[key] = plan
        sql, copy_sql, cols, procs = plan
        pairs = list(zip(cols, procs, strict=True))
        params = [tuple(proc(row[c]) if proc is not None else row[c] for c, proc in pairs) for row in rows]
        self.items.append(_Statement(sql, params, copy_sql))

    def update_members(self, members: Sequence[MemberState]) -> None:
        if not members:
            return
        rows = [
            (
                m.balance,
                m.debt,
                m.txn_count,
                m.amount_sum,
                {k: str(v) for k, v in m.spend.items()},
                m.recent,
                m.id,
            )
            for m in members
        ]
        for m in members:
            m.dirty = False
        if self.dialect.name == "postgresql":
            columns = list(zip(*rows, strict=True))
            for i in (4, 5):  # spend and recent travel as JSON text, cast by the column's type on update
                columns[i] = tuple(json.dumps(v, separators=(",", ":")) for v in columns[i])
            self.items.append(_Statement(_UPDATE_MEMBERS_PG, [tuple(list(c) for c in columns)]))
            return
        plan = _UPDATE_MEMBERS.get(self.dialect.name)
        if plan is None:
            sets = ", ".join(f"{c} = {self._mark()}" for c in _MEMBER_COLS[:-1])
            plan = (
                f"UPDATE members SET {sets} WHERE id = {self._mark()}",  # noqa: S608
                [MEMBERS.c[c].type._cached_bind_processor(self.dialect) for c in _MEMBER_COLS],
            )
            _UPDATE_MEMBERS[self.dialect.name] = plan
        sql, procs = plan
        self.items.append(
            _Statement(
                sql,
                [tuple(p(v) if p is not None else v for p, v in zip(procs, r, strict=True)) for r in rows],
            )
        )

    def run(self, *, commit: bool = False) -> None:
        """Send the statements; with ``commit`` (PostgreSQL) the COMMIT is in the same round trip, and the
        session's own commit that follows finds nothing left to do."""
        if not self.items:
            return
        if self.dialect.name != "postgresql":
            for st in self.items:
                self.conn.exec_driver_sql(st.sql, st.params)
            self.items.clear()
            return
        driver = self.conn.connection.driver_connection
        assert driver is not None
        try:
            if any(st.copy_sql is not None and len(st.params) >= COPY_MIN_ROWS for st in self.items):
                self._copy(driver)  # bulk: round trips are not what costs here
                if commit:
                    driver.commit()
                return
            with driver.pipeline():
                self.send(driver)
                if commit:
                    driver.commit()
        except driver.Error as exc:
            raise DBAPIError.instance("(journal writes)", None, exc, driver.Error) from exc

    def send(self, driver: Any) -> None:
        """Queue the statements on a psycopg connection already in pipeline mode."""
        try:
            with driver.cursor() as cursor:
                for st in self.items:
                    cursor.executemany(st.sql, st.params)
        finally:
            self.items.clear()

    def _copy(self, driver: Any) -> None:
        try:
            with driver.cursor() as cursor:
                for st in self.items:
                    if st.copy_sql is None:
                        cursor.executemany(st.sql, st.params)
                        continue
                    with cursor.copy(st.copy_sql) as copy:
                        for row in st.params:
                            copy.write_row(row)
        finally:
            self.items.clear()


_DEFER = "loyalty.defer_writes"
_PENDING = "loyalty.pending_writes"


def run_deferred(session: Session, *, commit: bool = False) -> None:
    """Send the writes a ``defer_writes`` transaction held back; with ``commit``, COMMIT goes with them."""
    writes: Writes | None = session.info.pop(_PENDING, None)
    if writes is not None:
        if commit:
            session.flush()  # ORM changes, if any, must be inside the transaction this COMMIT ends
        writes.run(commit=commit)


@event.listens_for(Session, "before_commit")
def _writes_before_commit(session: Session) -> None:
    """Whoever commits a session with writes still held back (not ``in_transaction``) commits them too."""
    run_deferred(session)


def pg_fetch_together(session: Session, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
    """Run read statements in one round trip on PostgreSQL (psycopg pipeline mode); the transaction's BEGIN
    travels with them. Rows come back as the driver gives them (tuples, no SQLAlchemy type processing)."""
    writes: Writes | None = session.info.pop(_PENDING, None)  # reads must see what this session wrote
    driver = session.connection().connection.driver_connection
    assert driver is not None
    sql = ""
    cursors = []
    try:
        with driver.pipeline():
            if writes is not None:
                writes.send(driver)
            for sql, params in queries:
                cursor = driver.cursor()
                cursor.execute(sql, params)
                cursors.append(cursor)
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    except driver.Error as exc:
        raise DBAPIError.instance(sql, None, exc, driver.Error) from exc
    finally:
        for cursor in cursors:
            cursor.close()


ID_BLOCK = 1000
_id_blocks: dict[str, list[int]] = {}
_id_lock = threading.Lock()
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('entries', 'id')) FROM generate_series(1, :n)")


def allocate_entry_ids(session: Session, n: int) -> list[int]:
    """Entry ids chosen before the insert, so lines and lots can point at them in the same bulk write.

    (``INSERT ... RETURNING`` in parameter order falls back to one statement per row on SQLite.) PostgreSQL
    hands out blocks of its sequence, kept per process and database, so most postings need no round trip for
    ids; ids are unique but, across processes, not in commit order. SQLite runs one writer at a time
    (``BEGIN IMMEDIATE``), so the ids after the current maximum are ours until commit.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        key = bind.engine.url.render_as_string(hide_password=True)
        with _id_lock:
            block = _id_blocks.setdefault(key, [])
            if len(block) < n:
                rows = session.execute(
                    text(
                        "SELECT nextval(pg_get_serial_sequence('entries', 'id')) FROM generate_series(1, :n)"
                    ),
                    {"n": n - len(block) + ID_BLOCK},
                )
                block.extend(r[0] for r in rows)
            ids = block[:n]
            del block[:n]
        return ids
    start = int(session.scalar(select(func.coalesce(func.max(Entry.id), 0))) or 0)
    return list(range(start + 1, start + n + 1))


def debit(session: Session, m: MemberState, points: int, entry: PendingEntry, now: dt.datetime) -> None:
    """Spend points: earliest-expiring lots, journal lines and balance move together, or not at all."""
    take_from_lots(session, m.id, points, now=now)
    entry.lines += [("points", m.id, -points, None), ("redeemed", None, points, None)]
    m.balance -= points
    m.dirty = True


def record(session: Session, entry: PendingEntry, m: MemberState, response: dict[str, Any]) -> dict[str, Any]:
    """Write a single-shot operation and answer it: the stored answer is what every replay returns."""
    entry.row["response"] = response
    write_entries(session, [entry], [m])
    return response


def write_entries(
    session: Session, pending: Sequence[PendingEntry], members: Iterable[MemberState] = ()
) -> list[int]:
    """Write entries with their lines and lots, and the changed members, in one round trip."""
    writes = Writes(session)
    ids = allocate_entry_ids(session, len(pending)) if pending else []
    for eid, p in zip(ids, pending, strict=True):
        by_date: dict[dt.datetime | None, int] = {}
        for _, _, pts, dated in p.lines:
            by_date[dated] = by_date.get(dated, 0) + pts
        assert not any(by_date.values()), f"unbalanced entry {p.row['kind']} {p.row['ext_id']}"
        p.row["id"] = eid
    writes.insert(ENTRIES, [p.row for p in pending])
    writes.insert(
        LINES,
        [
            {
                "entry_id": eid,
                "account": acc,
                "member_id": mem,
                "points": pts,
                "effective_at": dated or p.row["effective_at"],
            }
            for eid, p in zip(ids, pending, strict=True)
            for acc, mem, pts, dated in p.lines
        ],
    )
    writes.insert(
        LOTS,
        [
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
        ],
    )
    writes.update_members([m for m in members if m.dirty])
    if session.info.get(_DEFER) and writes.dialect.name == "postgresql":  # SQLite has no round trips to save
        held: Writes | None = session.info.get(_PENDING)
        if held is None:
            session.info[_PENDING] = writes
        else:
            held.items.extend(writes.items)
    else:
        writes.run()
    return ids


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


def flush_members(session: Session, members: Iterable[MemberState]) -> None:
    write_entries(session, (), members)


def chunks(seq: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def active_held(session: Session, member_id: str, now: dt.datetime, exclude: str | None = None) -> int:
    """Points reserved by active holds: a till's until it times out, a held redemption's until reviewed."""
    q = select(func.coalesce(func.sum(Hold.points), 0)).where(
        Hold.member_id == member_id,
        Hold.status == "active",
        or_(Hold.expires_at.is_(None), Hold.expires_at > now),
    )
    if exclude is not None:
        q = q.where(Hold.id != exclude)
    return int(session.scalar(q) or 0)


def require_available(
    session: Session, m: MemberState, points: int, now: dt.datetime, *, hold_id: str | None = None
) -> int:
    """What the member can spend now (unexpired lots less active holds); 409 when ``points`` is more."""
    available = spendable(session, m.id, now) - active_held(session, m.id, now, exclude=hold_id)
    if points > available:
        what = f"hold {hold_id!r} needs" if hold_id else "requested"
        raise InsufficientPoints(
            f"customer {m.id!r} has {max(available, 0)} points available, {what} {points}",
            available=max(available, 0),
            requested=points,
        )
    return available


def spendable(session: Session, member_id: str, now: dt.datetime) -> int:
    q = select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.member_id == member_id, Lot.remaining > 0, Lot.expires_at > now
    )
    return int(session.scalar(q) or 0)


def take_from_lots(
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
