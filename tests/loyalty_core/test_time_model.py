"""The ledger's time model and the hold lifecycle: no entry depends on a fact dated after it, expiry never
runs past now, a hold resolves exactly once and every stored answer is complete, a held redemption keeps
its points reserved until it is reviewed. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty_core import expiry, journal, ledger, reversals, spending, statements
from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from loyalty_core.rules_file import load_rules
from loyalty_core.schema import Entry, Hold, Line

RULES = load_rules(DEFAULT_RULES)
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


def earn(engine: Engine, tid: str, customer: str, amount: str, *, at: dt.datetime, now: dt.datetime) -> Any:
    txn = ledger.TransactionIn(tid, customer, "purchase", Decimal(amount), at)
    return journal.in_transaction(
        engine, lambda s: ledger.post_transaction(s, txn, rules=RULES, actor="test", now=now).response
    )


def run(engine: Engine, fn: Any, **kw: Any) -> Any:
    return journal.in_transaction(engine, lambda s: fn(s, **kw))


def as_of(engine: Engine, customer: str, at: dt.datetime) -> dict[str, Any]:
    with Session(engine) as s:
        return statements.balance_as_of(s, customer, at)


def line_dates(engine: Engine, customer: str) -> list[dt.datetime]:
    with Session(engine) as s:
        return sorted(
            {d for (d,) in s.execute(select(Line.effective_at).where(Line.member_id == customer)).all()}
        )


def assert_never_negative(engine: Engine, customer: str) -> None:
    """At every instant where a line of the member changes something, and just before it."""
    for d in line_dates(engine, customer):
        for t in (d - dt.timedelta(microseconds=1), d):
            b = as_of(engine, customer, t)
            assert b["balance"] >= 0, (t, b)
            assert b["debt"] >= 0, (t, b)
    with Session(engine) as s:
        assert statements.check_invariants(s) == []


# --- time ---------------------------------------------------------------------------------------------


def test_future_dated_earning_is_booked_now_so_spending_it_at_once_leaves_no_negative_balance(
    db_engine: Engine,
) -> None:
    now = T0
    ahead = now + 4 * MIN  # within the clock-skew tolerance
    r = earn(db_engine, "t-ahead", "c", "50000.00", at=ahead, now=now)
    assert r["points"] == 500
    run(db_engine, spending.redeem, redemption_id="r1", customer_id="c", points=500, reward="cashback",
        rules=RULES, actor="test", now=now + dt.timedelta(seconds=1))  # fmt: skip
    with Session(db_engine) as s:
        entry = s.execute(select(Entry).where(Entry.kind == "earn", Entry.ext_id == "t-ahead")).scalar_one()
    assert entry.effective_at == now
    assert entry.detail == {"occurred_at": ahead.isoformat()}
    assert as_of(db_engine, "c", now + dt.timedelta(seconds=2))["balance"] == 0
    assert_never_negative(db_engine, "c")


def test_earning_further_ahead_than_the_tolerance_is_refused(db_engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="future"):
        earn(db_engine, "t-far", "c", "100.00", at=T0 + 6 * MIN, now=T0)


def test_back_dated_earning_settles_debt_as_of_when_it_is_recorded(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "10000.00", at=T0, now=T0)  # 100 points
    run(db_engine, spending.redeem, redemption_id="r1", customer_id="c", points=100, reward="gift",
        rules=RULES, actor="test", now=T0 + DAY)  # fmt: skip
    rev_at = T0 + 2 * DAY
    r = run(db_engine, reversals.reverse, transaction_id="t1", reversal_id="v1", amount=None, rules=RULES,
            actor="test", now=rev_at)  # fmt: skip
    assert r["debt"] == 100
    # An earning dated before the debt existed, recorded after it: it pays the debt, but not in the past.
    now = T0 + 3 * DAY
    earn(db_engine, "t0", "c", "15000.00", at=T0 - DAY, now=now)  # 150 points: 100 settle, 50 to a lot
    before_debt = as_of(db_engine, "c", rev_at - MIN)
    assert before_debt == {**before_debt, "balance": 50, "debt": 0}
    assert as_of(db_engine, "c", rev_at)["debt"] == 100  # the debt stands until the settlement is recorded
    assert as_of(db_engine, "c", now) == {**as_of(db_engine, "c", now), "balance": 50, "debt": 0}
    assert_never_negative(db_engine, "c")


def test_expiry_never_runs_past_now(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "1000.00", at=T0, now=T0)
    due = T0 + RULES.lot_lifetime
    with pytest.raises(InvalidInput, match="after now"):
        run(db_engine, expiry.expire_due, as_of=due, now=due - MIN)
    assert as_of(db_engine, "c", due)["balance"] == 10  # nothing was expired
    assert run(db_engine, expiry.expire_due, as_of=due, now=due) == (1, 10)


def test_a_debit_expires_the_members_due_lots_first_dated_at_their_expiry(db_engine: Engine) -> None:
    earn(db_engine, "old", "c", "5000.00", at=T0, now=T0)  # 50 points, due a year later
    later = T0 + dt.timedelta(days=200)
    earn(db_engine, "new", "c", "3000.00", at=later, now=later)  # 30 points
    now = T0 + RULES.lot_lifetime + DAY  # the old lot is dead; no expiry job has run
    with pytest.raises(InsufficientPoints):
        run(db_engine, spending.redeem, redemption_id="r-big", customer_id="c", points=40, reward="gift",
            rules=RULES, actor="test", now=now)  # fmt: skip
    r = run(db_engine, spending.redeem, redemption_id="r1", customer_id="c", points=30, reward="gift",
            rules=RULES, actor="test", now=now)  # fmt: skip
    assert r["balance"] == 0  # the dead 50 went to expiry, not to the redemption
    with Session(db_engine) as s:
        expired = s.execute(select(Entry.effective_at, Entry.points).where(Entry.kind == "expire")).all()
    assert [(e.effective_at, e.points) for e in expired] == [(T0 + RULES.lot_lifetime, 50)]
    assert_never_negative(db_engine, "c")


# --- holds --------------------------------------------------------------------------------------------


def _hold(engine: Engine, hold_id: str, points: int, now: dt.datetime, timeout: int = 60) -> Any:
    return run(engine, spending.create_hold, hold_id=hold_id, customer_id="c", points=points, reward="gift",
               rules=RULES, actor="till", timeout_seconds=timeout, now=now)  # fmt: skip


def test_a_hold_timed_out_by_the_sweep_then_voided_at_the_till_answers_completely(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "10000.00", at=T0, now=T0)
    _hold(db_engine, "h1", 40, T0 + MIN)
    sweep_at = T0 + 5 * MIN
    assert run(db_engine, spending.void_timed_out_holds, now=sweep_at) == 1
    voided = run(db_engine, spending.void_hold, hold_id="h1", actor="till", now=sweep_at + MIN)
    assert voided == {
        "hold_id": "h1",
        "customer_id": "c",
        "points": 40,
        "status": "voided",
        "balance": 100,
        "reason": "timeout",
    }
    with pytest.raises(Conflict) as exc:
        run(db_engine, spending.capture_hold, hold_id="h1", actor="till", now=sweep_at + MIN)
    assert exc.value.code == "hold_not_active"


def test_a_void_after_the_timeout_records_the_timeout_the_sweep_would_have(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "10000.00", at=T0, now=T0)
    h = _hold(db_engine, "h1", 40, T0 + MIN)
    late = T0 + 10 * MIN
    voided = run(db_engine, spending.void_hold, hold_id="h1", actor="till", now=late)
    assert voided["reason"] == "timeout"
    assert run(db_engine, spending.void_timed_out_holds, now=late) == 0
    with Session(db_engine) as s:
        entries = s.execute(select(Entry.kind, Entry.effective_at).where(Entry.ext_id == "h1")).all()
        hold = s.get(Hold, "h1")
    assert sorted(entries) == sorted(
        [("hold", T0 + MIN), ("void", dt.datetime.fromisoformat(h["expires_at"]))]
    )
    assert hold is not None
    assert (hold.status, hold.settled_at) == ("voided", dt.datetime.fromisoformat(h["expires_at"]))


def test_a_hold_resolves_once(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "10000.00", at=T0, now=T0)
    _hold(db_engine, "h1", 40, T0 + MIN, timeout=600)
    first = run(db_engine, spending.capture_hold, hold_id="h1", actor="till", now=T0 + 2 * MIN)
    assert first["balance"] == 60
    assert run(db_engine, spending.capture_hold, hold_id="h1", actor="till", now=T0 + 3 * MIN) == first
    with pytest.raises(Conflict):
        run(db_engine, spending.void_hold, hold_id="h1", actor="till", now=T0 + 3 * MIN)
    assert run(db_engine, spending.void_timed_out_holds, now=T0 + 30 * MIN) == 0
    with Session(db_engine) as s:
        kinds = s.scalars(select(Entry.kind).where(Entry.ext_id == "h1").order_by(Entry.kind)).all()
    assert list(kinds) == ["capture", "hold"]


# --- held redemptions ---------------------------------------------------------------------------------


def _held_redemption(engine: Engine, now: dt.datetime) -> dict[str, Any]:
    """1,500 points earned just now, 1,200 redeemed at once: the rapid earn-and-redeem check holds it."""
    earn(engine, "t1", "c", "150000.00", at=now - MIN, now=now - MIN)
    r = run(engine, spending.redeem, redemption_id="r1", customer_id="c", points=1200, reward="gift",
            rules=RULES, actor="test", now=now)  # fmt: skip
    assert r["status"] == "held", r
    return dict(r)


def test_a_held_redemption_reserves_its_points_until_reviewed(db_engine: Engine) -> None:
    _held_redemption(db_engine, T0)
    with Session(db_engine) as s:
        view = statements.customer_view(s, "c", rules=RULES, now=T0)
    assert (view["balance"], view["held"], view["available"]) == (1500, 1200, 300)
    with pytest.raises(InsufficientPoints):
        run(db_engine, spending.redeem, redemption_id="r2", customer_id="c", points=400, reward="gift",
            rules=RULES, actor="test", now=T0 + MIN)  # fmt: skip


def test_a_released_redemption_spends_its_points_once(db_engine: Engine) -> None:
    _held_redemption(db_engine, T0)
    released = run(db_engine, spending.review_held_redemption, redemption_id="r1", approve=True,
                   actor="admin", now=T0 + DAY)  # fmt: skip
    assert released == {"redemption_id": "r1", "customer_id": "c", "points": 1200, "status": "released",
                        "balance": 300}  # fmt: skip
    again = run(db_engine, spending.review_held_redemption, redemption_id="r1", approve=True,
                actor="admin", now=T0 + 2 * DAY)  # fmt: skip
    assert again == released
    with pytest.raises(Conflict) as exc:
        run(db_engine, spending.review_held_redemption, redemption_id="r1", approve=False, actor="admin",
            now=T0 + 2 * DAY)  # fmt: skip
    assert exc.value.code == "already_reviewed"
    with Session(db_engine) as s:
        view = statements.customer_view(s, "c", rules=RULES, now=T0 + 2 * DAY)
        spent = s.scalar(select(func.sum(Line.points)).where(Line.account == "redeemed"))
    assert (view["balance"], view["held"], view["available"], spent) == (300, 0, 300, 1200)
    assert_never_negative(db_engine, "c")


def test_a_rejected_redemption_frees_its_points(db_engine: Engine) -> None:
    _held_redemption(db_engine, T0)
    rejected = run(db_engine, spending.review_held_redemption, redemption_id="r1", approve=False,
                   actor="admin", now=T0 + DAY)  # fmt: skip
    assert (rejected["status"], rejected["balance"]) == ("rejected", 1500)
    with Session(db_engine) as s:
        view = statements.customer_view(s, "c", rules=RULES, now=T0 + DAY)
    assert (view["balance"], view["held"], view["available"]) == (1500, 0, 1500)


def test_only_held_redemptions_are_reviewed(db_engine: Engine) -> None:
    earn(db_engine, "t1", "c", "10000.00", at=T0, now=T0)
    run(db_engine, spending.redeem, redemption_id="r-ok", customer_id="c", points=10, reward="gift",
        rules=RULES, actor="test", now=T0 + MIN)  # fmt: skip
    with pytest.raises(Conflict) as exc:
        run(db_engine, spending.review_held_redemption, redemption_id="r-ok", approve=True, actor="admin")
    assert exc.value.code == "not_held"
    with pytest.raises(NotFound):
        run(db_engine, spending.review_held_redemption, redemption_id="nope", approve=True, actor="admin")


def test_a_review_reservation_is_not_a_till_hold(db_engine: Engine) -> None:
    _held_redemption(db_engine, T0)
    with pytest.raises(NotFound):
        run(db_engine, spending.capture_hold, hold_id=spending.review_hold_id("r1"), actor="till", now=T0)
    assert run(db_engine, spending.void_timed_out_holds, now=T0 + 400 * DAY) == 0
