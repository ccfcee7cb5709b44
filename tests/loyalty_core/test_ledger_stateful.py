"""The ledger against a plain in-memory model, over random sequences of operations (Hypothesis stateful).

The model is deliberately naive (lists of lots, FIFO by expiry) so that it is obviously right; any
disagreement with the database-backed ledger is a ledger bug.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from loyalty_core import expiry, ledger, reversals, spending, statements
from loyalty_core.errors import Conflict, InsufficientPoints
from loyalty_core.rules import parse_rules
from loyalty_core.schema import metadata

RULES = parse_rules(
    {
        "version": "test",
        "earn": [
            {"id": "p", "types": ["purchase"], "per_amount": "100", "points": 1},
            {"id": "b", "types": ["bill_payment"], "per_amount": "100", "points": 2},
            {"id": "t", "types": ["transfer"], "fixed_points": 5},
        ],
        "lot_lifetime_days": 30,
        "fraud": {"velocity_max": 10**6, "unusual_amount_factor": 10**6, "rapid_redeem_min_points": 10**9},
    }
)
RATE = {"purchase": 1, "bill_payment": 2}
CUSTOMERS = ("alice", "bob", "carol")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class ModelLot:
    txn: str | None
    remaining: int
    earned_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class ModelMember:
    lots: list[ModelLot] = field(default_factory=list)
    debt: int = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def credit(self, points: int, txn: str | None, at: dt.datetime) -> None:
        settle = min(points, self.debt)
        self.debt -= settle
        if points - settle:
            self.lots.append(ModelLot(txn, points - settle, at, at + RULES.lot_lifetime))

    def take(self, points: int, *, now: dt.datetime | None, first_txn: str | None = None) -> int:
        usable = [lot for lot in self.lots if lot.remaining > 0 and (now is None or lot.expires_at > now)]
        usable.sort(key=lambda lot: (lot.txn != first_txn if first_txn else False, lot.expires_at))
        left = points
        for lot in usable:
            take = min(left, lot.remaining)
            lot.remaining -= take
            left -= take
        return points - left


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = create_engine("sqlite://")
        metadata.create_all(self.engine)
        self.now = START
        self.members: dict[str, ModelMember] = {}
        self.txns: dict[str, tuple[ledger.TransactionIn, int, Decimal]] = {}  # id -> (txn, points, refunded)
        self.counter = 0

    def _next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        kind=st.sampled_from(["purchase", "bill_payment", "transfer"]),
        cents=st.integers(min_value=1, max_value=5_000_000),
    )
    def post(self, customer: str, kind: str, cents: int) -> None:
        amount = Decimal(cents) / 100
        txn = ledger.TransactionIn(self._next_id("t"), customer, kind, amount, self.now)
        with Session(self.engine) as s, s.begin():
            result = ledger.post_transaction(s, txn, rules=RULES, actor="test", now=self.now)
        expected = 5 if kind == "transfer" else int(amount // 100) * RATE[kind]
        assert result.response["points"] == expected
        member = self.members.setdefault(customer, ModelMember())
        member.credit(expected, txn.transaction_id, self.now)
        assert result.response["balance"] == member.balance
        self.txns[txn.transaction_id] = (txn, expected, Decimal(0))

    @precondition(lambda self: self.txns)
    @rule(data=st.data())
    def replay_or_conflict(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.txns)))
        txn, _, _ = self.txns[tid]
        changed = data.draw(st.booleans())
        again = ledger.TransactionIn(
            tid, txn.customer_id, txn.type, txn.amount + (1 if changed else 0), txn.occurred_at
        )
        with Session(self.engine) as s, s.begin():
            if changed:
                with pytest.raises(Conflict):
                    ledger.post_transaction(s, again, rules=RULES, actor="test", now=self.now)
            else:
                assert ledger.post_transaction(s, again, rules=RULES, actor="test", now=self.now).replayed

    @precondition(lambda self: self.members)
    @rule(data=st.data(), share=st.sampled_from([0.3, 0.9, 1.0, 1.2]))
    def redeem(self, data: st.DataObject, share: float) -> None:
        customer = data.draw(st.sampled_from(sorted(self.members)))
        member = self.members[customer]
        available = sum(lot.remaining for lot in member.lots if lot.expires_at > self.now)
        points = max(1, int(available * share))
        with Session(self.engine) as s, s.begin():
            if points > available:
                with pytest.raises(InsufficientPoints):
                    spending.redeem(
                        s,
                        redemption_id=self._next_id("r"),
                        customer_id=customer,
                        points=points,
                        reward="gift",
                        rules=RULES,
                        actor="test",
                        now=self.now,
                    )
                return
            out = spending.redeem(
                s,
                redemption_id=self._next_id("r"),
                customer_id=customer,
                points=points,
                reward="gift",
                rules=RULES,
                actor="test",
                now=self.now,
            )
        member.take(points, now=self.now)
        assert out["balance"] == member.balance

    @precondition(lambda self: any(t[2] < t[0].amount for t in self.txns.values()))
    @rule(data=st.data(), share=st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal(1)]))
    def reverse(self, data: st.DataObject, share: Decimal) -> None:
        open_ids = sorted(t for t, v in self.txns.items() if v[2] < v[0].amount)
        tid = data.draw(st.sampled_from(open_ids))
        txn, points, refunded = self.txns[tid]
        left = txn.amount - refunded
        amount = max((left * share).quantize(Decimal("0.01")), Decimal("0.01"))
        with Session(self.engine) as s, s.begin():
            out = reversals.reverse(
                s,
                transaction_id=tid,
                reversal_id=self._next_id("v"),
                amount=amount,
                rules=RULES,
                actor="test",
                now=self.now,
            )
        expected = int(points * (refunded + amount) / txn.amount) - int(points * refunded / txn.amount)
        assert out["points_reversed"] == expected
        member = self.members[txn.customer_id]
        taken = member.take(min(expected, member.balance), now=None, first_txn=tid)
        member.debt += expected - taken
        self.txns[tid] = (txn, points, refunded + amount)
        assert (out["balance"], out["debt"]) == (member.balance, member.debt)

    @rule(days=st.integers(min_value=1, max_value=20))
    def advance_and_expire(self, days: int) -> None:
        self.now += dt.timedelta(days=days)
        with Session(self.engine) as s, s.begin():
            expiry.expire_due(s, as_of=self.now, now=self.now)
        for member in self.members.values():
            for lot in member.lots:
                if lot.expires_at <= self.now:
                    lot.remaining = 0

    @invariant()
    def ledger_agrees_with_model(self) -> None:
        with Session(self.engine) as s:
            assert statements.check_invariants(s) == []
            for customer, member in self.members.items():
                view = statements.customer_view(s, customer, rules=RULES, now=self.now)
                assert (view["balance"], view["debt"]) == (member.balance, member.debt), customer
                by_expiry: dict[dt.datetime, int] = {}
                for lot in member.lots:
                    if lot.remaining:
                        by_expiry[lot.expires_at] = by_expiry.get(lot.expires_at, 0) + lot.remaining
                expected = [{"points": p, "expires_at": e.isoformat()} for e, p in sorted(by_expiry.items())]
                assert view["expiring"] == expected[:12], customer

    def teardown(self) -> None:
        self.engine.dispose()


LedgerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLedgerAgainstModel = LedgerMachine.TestCase
