"""Races on PostgreSQL between the ways a hold or a held redemption can be resolved: exactly one wins.

Each round starts the contenders at one barrier on their own connections. Before the sweep locked members,
a capture racing the timeout sweep could leave a hold captured *and* voided (two resolution entries); the
tests count resolution entries per hold, so any double resolution shows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import journal, ledger, spending, statements
from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import LoyaltyError
from loyalty_core.rules_file import load_rules
from loyalty_core.schema import Entry, Hold

pytestmark = pytest.mark.postgres

RULES = load_rules(DEFAULT_RULES)
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
ROUNDS = 25


def race(*contenders: Callable[[], Any]) -> list[Any]:
    """Run the contenders at the same instant; each outcome is a result or the LoyaltyError it raised."""
    barrier = threading.Barrier(len(contenders))
    outcomes: list[Any] = [None] * len(contenders)

    def go(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            outcomes[i] = fn()
        except LoyaltyError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def _fund(engine: Engine, customer: str, points_in_hundreds: str) -> None:
    txn = ledger.TransactionIn(f"fund-{customer}", customer, "purchase", Decimal(points_in_hundreds), T0)
    journal.in_transaction(engine, lambda s: ledger.post_transaction(s, txn, rules=RULES, actor="t", now=T0))


def _resolutions(engine: Engine) -> Counter[str]:
    with Session(engine) as s:
        rows = s.execute(select(Entry.ext_id).where(Entry.kind.in_(["capture", "void", "redeem_review"])))
        return Counter(r.ext_id for r in rows)


def _waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).scalar_one()
        )


def test_capture_racing_the_timeout_sweep_resolves_each_hold_once(pg_engine: Engine) -> None:
    """The worst interleaving, made certain: a third connection locks the hold's row while the capture and
    the sweep both start, so each has read the hold as active before either can write it; then it lets go.
    """
    created = T0 + dt.timedelta(minutes=1)
    at = created + dt.timedelta(seconds=59)  # the capture is just in time
    sweep_at = created + dt.timedelta(seconds=61)  # the sweep's clock is just past the timeout
    winners: list[str] = []
    for i in range(3):
        customer, hold_id = f"c{i}", f"h{i}"
        _fund(pg_engine, customer, "100000.00")
        journal.in_transaction(
            pg_engine,
            lambda s, customer=customer, hold_id=hold_id: spending.create_hold(
                s, hold_id=hold_id, customer_id=customer, points=300, reward="gift", rules=RULES,
                actor="till", timeout_seconds=60, now=created,
            ),
        )  # fmt: skip
        with pg_engine.connect() as blocker:
            blocker.exec_driver_sql("SELECT 1 FROM holds WHERE id = %s FOR UPDATE", (hold_id,))
            outcomes: list[Any] = []
            runner = threading.Thread(
                target=lambda hold_id=hold_id, outcomes=outcomes: outcomes.extend(
                    race(
                        lambda: journal.in_transaction(
                            pg_engine, lambda s: spending.capture_hold(s, hold_id=hold_id, actor="t", now=at)
                        ),
                        lambda: journal.in_transaction(
                            pg_engine, lambda s: spending.void_timed_out_holds(s, now=sweep_at)
                        ),
                    )
                )
            )
            runner.start()
            for _ in range(100):  # both contenders are waiting on a lock (or 5 s have passed)
                if _waiting_on_locks(pg_engine) >= 2:
                    break
                threading.Event().wait(0.05)
            blocker.rollback()
        runner.join(timeout=60)
        capture, swept = outcomes
        captured = not isinstance(capture, LoyaltyError)
        assert captured != (swept == 1), f"capture {capture!r}, sweep voided {swept}: the hold resolved twice"
        winners.append("captured" if captured else "voided")
    resolved = _resolutions(pg_engine)
    assert all(resolved[f"h{i}"] == 1 for i in range(3)), resolved
    with Session(pg_engine) as s:
        assert [s.get_one(Hold, f"h{i}").status for i in range(3)] == winners
        assert statements.check_invariants(s) == []


def test_capture_racing_a_void_resolves_each_hold_once(pg_engine: Engine) -> None:
    _fund(pg_engine, "c", "1000000.00")
    now = T0 + dt.timedelta(minutes=1)
    for i in range(ROUNDS):
        journal.in_transaction(
            pg_engine,
            lambda s, i=i: spending.create_hold(
                s, hold_id=f"h{i}", customer_id="c", points=100, reward="gift", rules=RULES, actor="till",
                now=now,
            ),
        )  # fmt: skip
    wins: Counter[str] = Counter()
    for i in range(ROUNDS):
        capture, void = race(
            lambda i=i: journal.in_transaction(
                pg_engine, lambda s: spending.capture_hold(s, hold_id=f"h{i}", actor="till", now=now)
            ),
            lambda i=i: journal.in_transaction(
                pg_engine, lambda s: spending.void_hold(s, hold_id=f"h{i}", actor="till", now=now)
            ),
        )
        assert isinstance(capture, LoyaltyError) != isinstance(void, LoyaltyError), (capture, void)
        wins["capture" if isinstance(void, LoyaltyError) else "void"] += 1
    assert all(n == 1 for n in _resolutions(pg_engine).values())
    with Session(pg_engine) as s:
        assert statements.check_invariants(s) == []
        balance = statements.customer_view(s, "c", rules=RULES, now=now)["balance"]
    assert balance == 10000 - 100 * wins["capture"]


def test_release_racing_reject_of_a_held_redemption_decides_once(pg_engine: Engine) -> None:
    for i in range(ROUNDS):
        customer = f"c{i}"
        txn = ledger.TransactionIn(f"t{i}", customer, "purchase", Decimal("150000.00"), T0)
        journal.in_transaction(
            pg_engine, lambda s, txn=txn: ledger.post_transaction(s, txn, rules=RULES, actor="t", now=T0)
        )
        held = journal.in_transaction(
            pg_engine,
            lambda s, customer=customer, i=i: spending.redeem(
                s, redemption_id=f"r{i}", customer_id=customer, points=1200, reward="gift", rules=RULES,
                actor="t", now=T0 + dt.timedelta(minutes=1),
            ),
        )  # fmt: skip
        assert held["status"] == "held"
    later = T0 + dt.timedelta(days=1)
    for i in range(ROUNDS):
        release, reject = race(
            *(
                lambda i=i, approve=approve: journal.in_transaction(
                    pg_engine,
                    lambda s: spending.review_held_redemption(
                        s, redemption_id=f"r{i}", approve=approve, actor="admin", now=later
                    ),
                )
                for approve in (True, False)
            )
        )
        assert isinstance(release, LoyaltyError) != isinstance(reject, LoyaltyError), (release, reject)
        with Session(pg_engine) as s:
            view = statements.customer_view(s, f"c{i}", rules=RULES, now=later)
        expected = 300 if isinstance(reject, LoyaltyError) else 1500
        assert (view["balance"], view["held"], view["available"]) == (expected, 0, expected)
    assert all(n == 1 for n in _resolutions(pg_engine).values())
