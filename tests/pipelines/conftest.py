"""A tiny ledger built through the real ledger functions, and random in-memory frames, for the feature,
label, snapshot and Spark tests.

The tiny ledger (cutoff ``CUTOFF`` = 2026-03-01, rules of the brief) is small enough to compute every
feature by hand; the hand values live in features/test_compute.py next to the assertions.

- alice: joined 2025-01-15; five transactions before the cutoff (one earns a bonus offer's 100 points), a
  survey, a redemption of 20 points, two offers sent, viewed and activated (one completed); after the cutoff
  one more purchase and a redemption that empties her oldest lots (what features must NOT see).
- bob: joined 2025-06-01; two purchases and a partial refund of the first.
- erin: no customer record; a USD purchase (converted at the rules' rate) and a referral.
- carol: joins after the cutoff; dave: only a transaction after the cutoff. Neither is known at the cutoff.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty_core import (
    DEFAULT_RULES,
    Customer,
    OfferEvent,
    TransactionIn,
    activate_offer,
    award_activity,
    in_transaction,
    load_rules,
    post_transaction,
    record_decisions,
    redeem,
    reverse,
    upsert_offer,
)
from pipelines.features.frames import LedgerFrames

RULES = load_rules(DEFAULT_RULES)
CUTOFF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _post(
    engine: Engine,
    tid: str,
    customer: str,
    when: str,
    kind: str,
    amount: str,
    category: str | None = None,
    channel: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    txn = TransactionIn(tid, customer, kind, Decimal(amount), at(when), category, channel, currency)
    return in_transaction(
        engine, lambda s: post_transaction(s, txn, rules=RULES, actor="test", now=at(when)).response
    )


def _run(engine: Engine, fn: Callable[..., Any], **kw: Any) -> Any:
    return in_transaction(engine, lambda s: fn(s, **kw))


def _customer(
    s: Session, cid: str, joined: str, birth: int, gender: str, region: str, band: str, chan: str
) -> None:
    s.add(
        Customer(
            id=cid,
            source="test",
            joined_on=dt.date.fromisoformat(joined),
            birth_year=birth,
            gender=gender,
            region=region,
            income=Decimal("150000.00"),
            income_band=band,
            channel=chan,
            updated_at=CUTOFF,
        )
    )


def build_tiny_ledger(engine: Engine) -> Engine:
    with Session(engine) as s, s.begin():
        _customer(s, "alice", "2025-01-15", 1990, "F", "Moscow", "upper_middle", "app")
        _customer(s, "bob", "2025-06-01", 1980, "M", "Atlantis", "low", "branch")
        _customer(s, "carol", "2026-04-01", 2000, "F", "Kazan", "middle", "web")
    for spec in (
        {"id": "x2", "kind": "multiplier", "multiplier": 2, "categories": ["travel"], "duration_days": 14},
        {"id": "bonus", "kind": "bonus_points", "bonus_points": 100, "threshold": 1500, "duration_days": 30},
        {"id": "info", "kind": "informational", "duration_days": 7},
    ):
        _run(engine, upsert_offer, spec=spec, now=at("2025-01-01T00:00:00"))
    # The ranking decisions the activations below answer (an activation must name a served decision).
    _run(
        engine,
        record_decisions,
        rows=[
            {
                "id": f"d-{offer}",
                "customer_id": "alice",
                "made_at": at(made),
                "policy": "test",
                "offer_id": offer,
                "probability": 1.0,
                "served": True,
            }
            for offer, made in (("x2", "2026-02-01T00:00:00"), ("bonus", "2026-02-10T00:00:00"))
        ],
    )

    _post(engine, "a0", "alice", "2025-03-20T12:00:00", "purchase", "3000.00", "groceries", "pos")
    _post(engine, "a1", "alice", "2025-04-20T12:00:00", "purchase", "10000.00", "groceries", "pos")
    _post(engine, "b1", "bob", "2025-12-01T10:00:00", "purchase", "1000.00", "fuel", "branch")
    _post(engine, "a2", "alice", "2026-01-05T09:00:00", "bill_payment", "5000.00", "utilities", "app")
    _run(
        engine,
        award_activity,
        activity_id="survey-1",
        customer_id="alice",
        kind="survey",
        rules=RULES,
        actor="test",
        now=at("2026-01-10T00:00:00"),
    )
    _post(engine, "b2", "bob", "2026-02-01T10:00:00", "purchase", "500.00", "fuel", "branch")
    _run(
        engine,
        activate_offer,
        offer_id="x2",
        customer_id="alice",
        decision_id="d-x2",
        rules=RULES,
        now=at("2026-02-03T00:00:00"),
    )
    _run(
        engine,
        reverse,
        transaction_id="b1",
        reversal_id="b1-refund",
        amount=Decimal("400.00"),
        rules=RULES,
        actor="test",
        now=at("2026-02-10T00:00:00"),
    )
    _run(
        engine,
        activate_offer,
        offer_id="bonus",
        customer_id="alice",
        decision_id="d-bonus",
        rules=RULES,
        now=at("2026-02-15T00:00:00"),
    )
    _post(engine, "e1", "erin", "2026-02-15T08:00:00", "purchase", "10.00", None, "web", "USD")
    _run(
        engine,
        award_activity,
        activity_id="ref-1",
        customer_id="erin",
        kind="referral",
        rules=RULES,
        actor="test",
        now=at("2026-02-16T00:00:00"),
    )
    _post(engine, "a3", "alice", "2026-02-20T18:00:00", "purchase", "2000.00", "restaurants", "app")
    _run(
        engine,
        redeem,
        redemption_id="r1",
        customer_id="alice",
        points=20,
        reward="cashback",
        rules=RULES,
        actor="test",
        now=at("2026-02-25T12:00:00"),
    )
    _post(engine, "a4", "alice", "2026-02-27T10:00:00", "transfer", "100.00", "p2p", "app")
    # After the cutoff: none of this may change a feature as of CUTOFF.
    _post(engine, "a5", "alice", "2026-03-05T10:00:00", "purchase", "1000.00", "travel", "app")
    _run(
        engine,
        redeem,
        redemption_id="r2",
        customer_id="alice",
        points=100,
        reward="gift",
        rules=RULES,
        actor="test",
        now=at("2026-03-10T12:00:00"),
    )
    _post(engine, "d1", "dave", "2026-03-02T10:00:00", "purchase", "700.00", "fuel", "pos")

    # Sends and views come from the campaign system; the ledger itself wrote the activations and the
    # completion (by a3) into the funnel.
    events = [
        ("e-1", "alice", "x2", "sent", "2026-02-01T00:00:00", "d-x2"),
        ("e-2", "alice", "x2", "viewed", "2026-02-02T00:00:00", "d-x2"),
        ("e-4", "alice", "bonus", "sent", "2026-02-10T00:00:00", "d-bonus"),
        ("e-5", "alice", "bonus", "viewed", "2026-02-12T00:00:00", "d-bonus"),
        ("e-8", "alice", "info", "sent", "2026-03-03T00:00:00", "d-info"),
        ("e-9", "bob", "bonus", "sent", "2026-03-01T00:00:00", "d-bob"),
    ]
    with Session(engine) as s, s.begin():
        for ext, cid, oid, event, when, decision in events:
            s.add(
                OfferEvent(
                    ext_id=ext,
                    customer_id=cid,
                    offer_id=oid,
                    event=event,
                    occurred_at=at(when),
                    channel="app",
                    decision_id=decision,
                )
            )
    return engine


@pytest.fixture
def tiny_ledger(engine: Engine) -> Engine:
    """The tiny ledger on a fresh SQLite database."""
    return build_tiny_ledger(engine)


@pytest.fixture
def tiny_ledger_any(db_engine: Engine) -> Engine:
    """The tiny ledger on SQLite and on PostgreSQL."""
    return build_tiny_ledger(db_engine)


def random_frames(seed: int, customers: int = 60, transactions: int = 1500) -> LedgerFrames:
    """Plausible frames of every kind, drawn at random around 2026 (for engine and property tests)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:03d}" for i in range(customers)], dtype=object)
    start = pd.Timestamp("2024-06-01", tz="UTC")
    span = 700 * 86_400

    def times(n: int) -> pd.Series:
        return pd.Series(start + pd.to_timedelta(np.sort(rng.integers(0, span, n)), unit="s"))

    def who(n: int) -> np.ndarray:
        return rng.choice(ids, n)

    n = transactions
    txn_at = times(n)
    owners = who(n)
    points = rng.integers(0, 300, n)
    txns = pd.DataFrame(
        {
            "id": np.arange(n),
            "customer_id": owners,
            "occurred_at": txn_at,
            "type": rng.choice(["purchase", "purchase", "bill_payment", "transfer"], n),
            "amount": rng.integers(100, 5_000_000, n) / 100,
            "category": rng.choice(["groceries", "fuel", "travel", "utilities", "p2p", "misc", None], n),
            "channel": rng.choice(["app", "web", "pos", "branch", None], n),
            "points": points,
        }
    )
    lots = pd.DataFrame(
        {
            "id": np.arange(n),
            "customer_id": owners,
            "earned_at": txn_at,
            "expires_at": txn_at + pd.Timedelta(days=365),
            "points": points,
        }
    )
    m = n // 5
    spend_at = times(m)
    moves = pd.concat(
        [
            pd.DataFrame(
                {
                    "id": np.arange(n),
                    "customer_id": owners,
                    "effective_at": txn_at,
                    "kind": "earn",
                    "account": "points",
                    "points": points,
                }
            ),
            pd.DataFrame(
                {
                    "id": np.arange(n, n + m),
                    "customer_id": who(m),
                    "effective_at": spend_at,
                    "kind": rng.choice(["redeem", "capture", "expire", "reverse", "activity"], m),
                    "account": rng.choice(["points", "points", "debt"], m),
                    "points": rng.integers(-200, 50, m),
                }
            ),
        ],
        ignore_index=True,
    )
    r = n // 20
    refund_at = times(r)
    refunds = pd.DataFrame(
        {
            "id": np.arange(r),
            "customer_id": who(r),
            "occurred_at": refund_at,
            "original_at": refund_at - pd.to_timedelta(rng.integers(0, 200, r), unit="D"),
            "type": rng.choice(["purchase", "bill_payment"], r),
            "amount": rng.integers(100, 100_000, r) / 100,
        }
    )
    e = n // 3
    kinds = rng.choice(["multiplier", "bonus_points", "cashback", "informational"], e)
    offer_events = pd.DataFrame(
        {
            "id": np.arange(e),
            "customer_id": who(e),
            "offer_id": [f"o-{k}" for k in kinds],
            "offer_kind": kinds,
            "duration_days": rng.integers(3, 30, e),
            "event": rng.choice(["sent", "viewed", "activated", "completed", "shown"], e),
            "occurred_at": times(e),
            "channel": rng.choice(["app", "email"], e),
            "decision_id": None,
        }
    )
    a = n // 15
    act_at = times(a)
    completed = rng.random(a) < 0.5
    activations = pd.DataFrame(
        {
            "id": np.arange(a),
            "customer_id": who(a),
            "offer_id": "o-multiplier",
            "offer_kind": "multiplier",
            "activated_at": act_at,
            "expires_at": act_at + pd.Timedelta(days=14),
            "completed_at": act_at.where(completed) + pd.Timedelta(days=3),
        }
    )
    known = ids[: customers * 3 // 4]
    people = pd.DataFrame(
        {
            "customer_id": known,
            "joined_on": start.normalize() + pd.to_timedelta(rng.integers(-400, 600, len(known)), unit="D"),
            "birth_year": rng.integers(1950, 2005, len(known)).astype(float),
            "gender": rng.choice(["F", "M", None], len(known)),
            "region": rng.choice(["Moscow", "Kazan", "Narnia", None], len(known)),
            "income": rng.integers(20_000, 500_000, len(known)).astype(float),
            "income_band": rng.choice(["low", "middle", "high", None], len(known)),
            "channel": rng.choice(["app", "web", None], len(known)),
        }
    )
    return LedgerFrames.from_frames(
        customers=people,
        transactions=txns,
        refunds=refunds,
        movements=moves,
        lots=lots,
        offer_events=offer_events,
        activations=activations,
    )


@pytest.fixture
def make_random_frames() -> Callable[..., LedgerFrames]:
    return random_frames
