"""The ledger's write engine: entries, lines, lots and members go straight to the driver, in one round trip.

The ledger writes four rows per posting; SQLAlchemy's per-statement parameter machinery cost more than the
database on this path, so statement texts and column converters are prepared once per table (cached plans)
and the rows go straight to the driver: one round trip on PostgreSQL (psycopg pipeline mode), and COPY for
large batches (bulk ingest), which PostgreSQL takes an order of magnitude faster than row-by-row inserts.
Entry ids are chosen before the insert (blocks of the sequence kept per process), so lines and lots can
point at them in the same write. Driver errors are re-raised as SQLAlchemy's, so ``in_transaction``
retries them like any other.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, event, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty_core.entries import PendingEntry
from loyalty_core.members import JSON_COLUMNS, WRITTEN_COLUMNS, MemberState, written_values
from loyalty_core.schema import ENTRIES, LINES, LOTS, MEMBERS, Entry

# From this many rows in one statement, PostgreSQL gets them by COPY (bulk loads) rather than row by row.
COPY_MIN_ROWS = 64
ID_BLOCK = 1000


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves the constructor untyped


def _pg_array(column: str) -> str:
    """The array type a column's values travel in to PostgreSQL's ``unnest`` (JSON as text, cast on SET)."""
    col = MEMBERS.c[column]
    return "text" if isinstance(col.type, JSON) else col.type.compile(dialect=_PG)


# One UPDATE for every member of a batch (PostgreSQL): the rows come in as arrays, one per column.
_UPDATED = (*WRITTEN_COLUMNS, "id")
_UPDATE_MEMBERS_PG = (  # names and types come from our own schema, never from input
    "UPDATE members AS m SET "  # noqa: S608
    + ", ".join(f"{c} = v.{c}" + ("::json" if c in JSON_COLUMNS else "") for c in WRITTEN_COLUMNS)
    + " FROM unnest("
    + ", ".join(f"%s::{_pg_array(c)}[]" for c in _UPDATED)
    + f") AS v({', '.join(_UPDATED)}) WHERE m.id = v.id"
)
_INSERT_PLANS: dict[tuple[str, str], tuple[str, str, list[str], list[Any]]] = {}
_UPDATE_MEMBERS: dict[str, tuple[str, list[Any]]] = {}


@dataclass(slots=True)
class _Statement:
    sql: str
    params: list[tuple[Any, ...]]
    copy_sql: str | None = None  # the same insert as a COPY, for many rows on PostgreSQL


class Writes:
    """Statements sent to the database together: one round trip on PostgreSQL (psycopg pipeline mode)."""

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
        rows = [written_values(m) for m in members]
        for m in members:
            m.dirty = False
        if self.dialect.name == "postgresql":
            columns = list(zip(*rows, strict=True))
            for i, c in enumerate(_UPDATED):  # JSON travels as text, cast by the column's type on update
                if c in JSON_COLUMNS:
                    columns[i] = tuple(json.dumps(v, separators=(",", ":")) for v in columns[i])
            self.items.append(_Statement(_UPDATE_MEMBERS_PG, [tuple(list(c) for c in columns)]))
            return
        plan = _UPDATE_MEMBERS.get(self.dialect.name)
        if plan is None:
            sets = ", ".join(f"{c} = {self._mark()}" for c in WRITTEN_COLUMNS)
            plan = (
                f"UPDATE members SET {sets} WHERE id = {self._mark()}",  # noqa: S608
                [MEMBERS.c[c].type._cached_bind_processor(self.dialect) for c in _UPDATED],
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


class DeferredWritesSession(Session):
    """A session whose journal writes wait for its commit and travel with it (``in_transaction``'s
    ``defer_writes``): only for work that reads nothing back after writing, such as a batch of postings."""


_PENDING = "loyalty.pending_writes"


def run_deferred(session: Session, *, commit: bool = False) -> None:
    """Send the writes a deferring session held back; with ``commit``, COMMIT goes with them."""
    writes: Writes | None = session.info.pop(_PENDING, None)
    if writes is not None:
        if commit:
            session.flush()  # ORM changes, if any, must be inside the transaction this COMMIT ends
        writes.run(commit=commit)


@event.listens_for(DeferredWritesSession, "before_commit")
def commit_deferred_writes(session: Session) -> None:
    """Whoever commits a deferring session with writes still held back commits them too."""
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
                rows = session.execute(_NEXT_IDS, {"n": n - len(block) + ID_BLOCK})
                block.extend(r[0] for r in rows)
            ids = block[:n]
            del block[:n]
        return ids
    start = int(session.scalar(select(func.coalesce(func.max(Entry.id), 0))) or 0)
    return list(range(start + 1, start + n + 1))


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
    # SQLite has no round trips to save.
    if isinstance(session, DeferredWritesSession) and writes.dialect.name == "postgresql":
        held: Writes | None = session.info.get(_PENDING)
        if held is None:
            session.info[_PENDING] = writes
        else:
            held.items.extend(writes.items)
    else:
        writes.run()
    return ids


def flush_members(session: Session, members: Iterable[MemberState]) -> None:
    write_entries(session, (), members)
