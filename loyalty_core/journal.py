"""How every ledger operation runs: one transaction with retries, the shared opening, the recorded answer.

An operation (redeem, hold, reverse, award...) opens the same way (``open_operation``): lock the member,
then look the caller's id up, so a replay is answered under the lock and never written twice. It builds
its journal entry (``entries``), moves points (``lots``) and records the entry with its answer
(``record``). ``in_transaction`` runs it, retrying the races the database settles by refusing one side.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from loyalty_core.entries import PendingEntry
from loyalty_core.idempotency import replay, request_hash, was_replayed
from loyalty_core.locks import lock_one
from loyalty_core.members import MemberState
from loyalty_core.writer import DeferredWritesSession, run_deferred, write_entries

T = TypeVar("T")

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
    session_class = DeferredWritesSession if defer_writes else Session
    for attempt in range(attempts):
        try:
            with session_class(engine, expire_on_commit=False) as session, session.begin():
                result = work(session)
                run_deferred(session, commit=True)
                return result
        except DBAPIError as exc:
            if attempt == attempts - 1 or not retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.002 * (2**attempt)))
    raise AssertionError("unreachable")


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
        replayed = was_replayed(session)
        return result

    value = in_transaction(engine, tracked, **options)
    return Outcome(value, replayed)


@dataclass(frozen=True, slots=True)
class Opened:
    """An operation after its opening: the locked member, the request's fingerprint, and the first answer
    if this id was already used (then the operation returns ``prior`` and does nothing else)."""

    member: MemberState
    req_hash: str
    prior: dict[str, Any] | None


def open_operation(
    session: Session,
    kind: str,
    ext_id: str,
    customer_id: str,
    body: tuple[object, ...],
    *,
    create: bool,
    now: dt.datetime,
) -> Opened:
    """Lock the member (enrolling them if ``create``), then look ``ext_id`` up among ``kind``'s entries.

    The fingerprint covers ``kind`` and ``body``: the same id with another body is a ``Conflict`` (409).
    """
    m = lock_one(session, customer_id, create=create, now=now)
    req = request_hash(kind, *body)
    return Opened(m, req, replay(session, kind, ext_id, req))


def record(session: Session, entry: PendingEntry, m: MemberState, response: dict[str, Any]) -> dict[str, Any]:
    """Write a single-shot operation and answer it: the stored answer is what every replay returns."""
    entry.row["response"] = response
    write_entries(session, [entry], [m])
    return response
