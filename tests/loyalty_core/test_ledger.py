"""Ledger behaviour across operations, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import journal, ledger, offers, reversals, spending, statements
from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from loyalty_core.rules import parse_rules
from loyalty_core.rules_file import load_rules
from loyalty_core.schema import Entry, OfferEvent

BRIEF = load_rules(DEFAULT_RULES)
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def post(
    engine: Engine,
    tid: str,
    customer: str,
    amount: str,
    *,
    kind: str = "purchase",
    at: dt.datetime = T0,
    rules=BRIEF,
    category: str | None = None,
) -> dict:  # type: ignore[no-untyped-def]
    txn = ledger.TransactionIn(tid, customer, kind, Decimal(amount), at, category)
    return journal.in_transaction(
        engine, lambda s: ledger.post_transaction(s, txn, rules=rules, actor="test", now=at).response
    )


def run(engine: Engine, fn, **kw):  # type: ignore[no-untyped-def]
    return journal.in_transaction(engine, lambda s: fn(s, **kw))


def view(engine: Engine, customer: str, now: dt.datetime = T0) -> dict:  # type: ignore[type-arg]
    with Session(engine) as s:
        return statements.customer_view(s, customer, rules=BRIEF, now=now)


def test_tier_rises_with_rolling_spend(db_engine: Engine) -> None:
    assert post(db_engine, "a", "c", "299999.00")["tier"] == "base"
    assert post(db_engine, "b", "c", "1000.00")["points"] == 10
    same_month = post(db_engine, "c", "c", "1000.00", at=T0 + dt.timedelta(hours=1))
    assert (same_month["tier"], same_month["points"]) == ("base", 10)  # reviewed as the next month begins
    boosted = post(db_engine, "d", "c", "1000.00", at=T0 + dt.timedelta(days=31))
    assert (boosted["tier"], boosted["points"]) == ("silver", 12)
    later = post(db_engine, "e", "c", "1000.00", at=T0 + dt.timedelta(days=400))
    assert (later["tier"], later["points"]) == ("base", 10)


def test_a_back_dated_posting_gets_the_tier_of_its_own_date(db_engine: Engine) -> None:
    """Spend dated after a posting never lifts its tier, whatever order the postings arrive in."""
    now = T0 + dt.timedelta(days=45)  # 2026-04-15
    txn = ledger.TransactionIn("big", "c", "purchase", Decimal("300000.00"), T0 + dt.timedelta(days=20))
    journal.in_transaction(
        db_engine, lambda s: ledger.post_transaction(s, txn, rules=BRIEF, actor="t", now=now)
    )
    early = ledger.TransactionIn("early", "c", "purchase", Decimal("1000.00"), T0 + dt.timedelta(days=1))
    got = journal.in_transaction(
        db_engine, lambda s: ledger.post_transaction(s, early, rules=BRIEF, actor="t", now=now).response
    )
    assert (got["tier"], got["points"]) == ("base", 10)
    assert post(db_engine, "april", "c", "1000.00", at=now)["tier"] == "silver"


def test_caps_hold_across_requests(db_engine: Engine) -> None:
    capped = parse_rules(
        {
            "earn": [
                {
                    "id": "bills",
                    "types": ["bill_payment"],
                    "per_amount": "100",
                    "points": 2,
                    "cap_points": 30,
                    "cap_period": "month",
                }
            ]
        }
    )
    got = [
        post(db_engine, f"b{i}", "c", "1000", kind="bill_payment", rules=capped)["points"] for i in range(4)
    ]
    assert got == [20, 10, 0, 0]
    next_month = post(
        db_engine, "b9", "c", "1000", kind="bill_payment", rules=capped, at=T0 + dt.timedelta(days=31)
    )
    assert next_month["points"] == 20


def test_reversal_of_spent_points_becomes_debt_that_earnings_settle(db_engine: Engine) -> None:
    post(db_engine, "t1", "c", "10000.00")
    run(
        db_engine,
        spending.redeem,
        redemption_id="r1",
        customer_id="c",
        points=80,
        reward="cashback",
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    out = run(
        db_engine,
        reversals.reverse,
        transaction_id="t1",
        reversal_id="v1",
        amount=None,
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    assert (out["points_reversed"], out["balance"], out["debt"]) == (100, 0, 80)
    assert post(db_engine, "t2", "c", "5000.00")["balance"] == 0
    assert (view(db_engine, "c")["debt"], post(db_engine, "t3", "c", "5000.00")["balance"]) == (30, 20)
    with pytest.raises(Conflict, match="fully reversed"):
        run(
            db_engine,
            reversals.reverse,
            transaction_id="t1",
            reversal_id="v2",
            amount=None,
            rules=BRIEF,
            actor="test",
            now=T0,
        )
    with Session(db_engine) as s:
        assert statements.check_invariants(s) == []


def test_partial_refunds_cannot_exceed_the_original(db_engine: Engine) -> None:
    post(db_engine, "t1", "c", "1000.00")
    first = run(
        db_engine,
        reversals.reverse,
        transaction_id="t1",
        reversal_id="v1",
        amount=Decimal("250"),
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    assert first["points_reversed"] == 2
    with pytest.raises(InvalidInput, match="exceeds"):
        run(
            db_engine,
            reversals.reverse,
            transaction_id="t1",
            reversal_id="v2",
            amount=Decimal("750.01"),
            rules=BRIEF,
            actor="test",
            now=T0,
        )
    rest = run(
        db_engine,
        reversals.reverse,
        transaction_id="t1",
        reversal_id="v3",
        amount=None,
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    assert (rest["points_reversed"], rest["balance"]) == (8, 0)
    with pytest.raises(NotFound):
        run(
            db_engine,
            reversals.reverse,
            transaction_id="nope",
            reversal_id="v4",
            amount=None,
            rules=BRIEF,
            actor="test",
            now=T0,
        )


def test_holds_reserve_then_capture_void_or_time_out(db_engine: Engine) -> None:
    post(db_engine, "t1", "c", "10000.00")
    hold = {"customer_id": "c", "reward": "gift", "rules": BRIEF, "actor": "test"}
    run(db_engine, spending.create_hold, hold_id="h1", points=60, now=T0, **hold)
    assert view(db_engine, "c")["available"] == 40
    with pytest.raises(InsufficientPoints):
        run(
            db_engine,
            spending.redeem,
            redemption_id="r1",
            customer_id="c",
            points=41,
            reward="gift",
            rules=BRIEF,
            actor="test",
            now=T0,
        )
    assert run(db_engine, spending.capture_hold, hold_id="h1", actor="test", now=T0)["balance"] == 40
    run(db_engine, spending.create_hold, hold_id="h2", points=10, timeout_seconds=60, now=T0, **hold)
    assert run(db_engine, spending.void_hold, hold_id="h2", actor="test", now=T0)["status"] == "voided"
    run(db_engine, spending.create_hold, hold_id="h3", points=40, timeout_seconds=60, now=T0, **hold)
    later = T0 + dt.timedelta(seconds=61)
    assert view(db_engine, "c", later)["available"] == 40
    with pytest.raises(Conflict, match="timed out"):
        run(db_engine, spending.capture_hold, hold_id="h3", actor="test", now=later)
    assert run(db_engine, spending.void_timed_out_holds, now=later) == 1
    assert view(db_engine, "c", later)["balance"] == 40


def test_balance_as_of_past_dates(db_engine: Engine) -> None:
    post(db_engine, "t1", "c", "1000.00", at=T0 - dt.timedelta(days=10))
    post(db_engine, "t2", "c", "2000.00", at=T0 - dt.timedelta(days=5))
    run(
        db_engine,
        spending.redeem,
        redemption_id="r1",
        customer_id="c",
        points=15,
        reward="gift",
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    with Session(db_engine) as s:
        assert statements.balance_as_of(s, "c", T0 - dt.timedelta(days=7))["balance"] == 10
        assert statements.balance_as_of(s, "c", T0 - dt.timedelta(days=1))["balance"] == 30
        assert statements.balance_as_of(s, "c", T0)["balance"] == 15


def test_velocity_holds_then_release_credits(db_engine: Engine) -> None:
    for i in range(30):
        assert post(db_engine, f"t{i}", "c", "100.00", at=T0 + dt.timedelta(seconds=i))["status"] == "posted"
    held = post(db_engine, "t30", "c", "100.00", at=T0 + dt.timedelta(seconds=30))
    assert (held["status"], held["points"]) == ("held", 0)
    assert held["reason"].startswith("velocity")
    released = run(
        db_engine,
        reversals.review_held,
        transaction_id="t30",
        approve=True,
        rules=BRIEF,
        actor="admin",
        now=T0 + dt.timedelta(minutes=5),
    )
    assert (released["status"], released["balance"]) == ("released", 31)
    with pytest.raises(Conflict):
        run(db_engine, reversals.review_held, transaction_id="t29", approve=True, rules=BRIEF, actor="admin")


def test_activated_offer_multiplies_matching_earnings(db_engine: Engine) -> None:
    run(
        db_engine,
        offers.upsert_offer,
        spec={
            "id": "travel2x",
            "kind": "multiplier",
            "multiplier": 2,
            "categories": ["travel"],
            "duration_days": 14,
        },
        now=T0,
    )
    act = run(
        db_engine,
        offers.activate_offer,
        offer_id="travel2x",
        customer_id="c",
        decision_id=None,
        rules=BRIEF,
        now=T0,
    )
    again = run(
        db_engine,
        offers.activate_offer,
        offer_id="travel2x",
        customer_id="c",
        decision_id=None,
        rules=BRIEF,
        now=T0 + dt.timedelta(hours=1),
    )
    assert again["activation_id"] == act["activation_id"]
    travel = post(db_engine, "t1", "c", "1000", at=T0 + dt.timedelta(days=1), category="travel")
    assert (travel["points"], travel["multiplier"]) == (20, 2.0)
    assert post(db_engine, "t2", "c", "1000", at=T0 + dt.timedelta(days=1), category="fuel")["points"] == 10
    assert (
        post(db_engine, "t3", "c", "1000", at=T0 + dt.timedelta(days=15), category="travel")["points"] == 10
    )
    assert view(db_engine, "c", T0 + dt.timedelta(days=1))["active_offers"][0]["offer_id"] == "travel2x"
    with Session(db_engine) as s:
        funnel = s.execute(
            select(OfferEvent.event, OfferEvent.offer_id, OfferEvent.occurred_at).order_by(OfferEvent.id)
        ).all()
    # One activation (asked twice) and one completion (by t1, the first matching transaction) in the funnel.
    assert [tuple(r) for r in funnel] == [
        ("activated", "travel2x", T0),
        ("completed", "travel2x", T0 + dt.timedelta(days=1)),
    ]


def test_foreign_currency_earns_on_its_home_value_and_keeps_what_was_paid(db_engine: Engine) -> None:
    txn = ledger.TransactionIn("usd-1", "c", "purchase", Decimal("12.34"), T0, None, None, "usd")
    answer = journal.in_transaction(
        db_engine, lambda s: ledger.post_transaction(s, txn, rules=BRIEF, actor="test", now=T0).response
    )
    assert answer["points"] == 11  # 12.34 USD x 90 = 1110.60 RUB -> 11 full hundreds
    with Session(db_engine) as s:
        entry = s.execute(select(Entry.amount, Entry.currency).where(Entry.ext_id == "usd-1")).one()
    assert (entry.amount, entry.currency) == (Decimal("12.34"), "USD")
    gbp = ledger.TransactionIn("gbp-1", "c", "purchase", Decimal("10"), T0, None, None, "GBP")
    with pytest.raises(InvalidInput, match="accept RUB, EUR, USD"):
        journal.in_transaction(
            db_engine, lambda s: ledger.post_transaction(s, gbp, rules=BRIEF, actor="test", now=T0)
        )
    refund = run(
        db_engine,
        reversals.reverse,
        transaction_id="usd-1",
        reversal_id="r-usd",
        amount=Decimal("6.17"),
        rules=BRIEF,
        actor="test",
        now=T0,
    )
    assert refund["points_reversed"] == 5
