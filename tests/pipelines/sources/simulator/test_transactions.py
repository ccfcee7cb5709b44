"""Simulated transactions: sorted, unique, within the customers' lives and the ledger's limits and rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd

from loyalty_core import (
    OfferEffect,
    compute_earning,
    fraud_reason_for_earning,
    note_posting,
)
from pipelines.sources.simulator.transactions import Rows, within_ledger_limits
from tests.pipelines.sources.simulator.conftest import PURCHASE_CATEGORIES, RULES, START, History


def test_transactions_are_sorted_unique_and_well_formed(history: History) -> None:
    t = history.txns
    assert len(t) > 50_000
    assert t["transaction_id"].is_unique
    assert t["occurred_at"].is_monotonic_increasing
    same_time = t["occurred_at"].eq(t["occurred_at"].shift())
    assert (t["transaction_id"][same_time] > t["transaction_id"].shift()[same_time]).all()
    amounts = t["amount"].map(Decimal)
    assert (amounts > 0).all()
    assert (amounts < Decimal(5_000_000)).all()
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
    assert t["occurred_at"].min() >= START
    assert t["occurred_at"].max() < history.end
    assert set(t["type"]) == {"purchase", "bill_payment", "transfer"}
    assert set(t["channel"]) <= {"app", "web", "branch", "pos"}
    assert set(t["currency"]) == {"RUB"}
    by_type = t.groupby("type")["category"].agg(set)
    assert by_type["purchase"] <= set(PURCHASE_CATEGORIES)
    assert by_type["bill_payment"] <= {"utilities", "mobile", "internet", "taxes"}
    assert by_type["transfer"] == {"p2p"}
    # Realistic rhythms: 0.3 to 1.5 transactions a day, busier Friday and Saturday than Sunday.
    per_day = len(t) / (1500 * 150)
    assert 0.3 <= per_day <= 1.5
    weekday = t["occurred_at"].dt.day_of_week.value_counts()
    assert weekday[4] > weekday[6]
    assert weekday[5] > weekday[6]


def test_no_transaction_after_churn_or_before_joining(history: History) -> None:
    t = history.txns.merge(history.truth[["customer_id", "churn_at"]], on="customer_id")
    churned = t["churn_at"].notna()
    assert churned.any()
    assert (t.loc[churned, "occurred_at"] < t.loc[churned, "churn_at"]).all()
    joined = t["customer_id"].map(history.customers.set_index("customer_id")["joined_on"])
    assert (t["occurred_at"].dt.date >= joined).all()
    churn = history.truth["churn_at"].dropna()
    assert ((churn >= START) & (churn < history.end)).all()


def test_no_transaction_would_be_held_by_the_ledger(history: History) -> None:
    """Replay each customer's transactions through the ledger's own fraud check (velocity, unusual amount)."""
    limits = RULES.fraud
    t = history.txns.sort_values(["customer_id", "occurred_at", "transaction_id"], kind="stable")
    seconds = t["occurred_at"].astype("int64").to_numpy() // 1_000_000
    customer = t["customer_id"].to_numpy()
    # Velocity, directly: the 31st transaction of a customer never falls within an hour of the 1st.
    m = limits.velocity_max
    same = customer[m:] == customer[:-m]
    assert (seconds[m:][same] - seconds[:-m][same] >= limits.velocity_window.total_seconds()).all()
    recent: list[int] = []
    count, total, current = 0, Decimal(0), None
    for cid, at, amount in zip(customer, t["occurred_at"], t["amount"], strict=True):
        if cid != current:
            recent, count, total, current = [], 0, Decimal(0), cid
        when = at.to_pydatetime()
        reason = fraud_reason_for_earning(
            limits, amount=amount, occurred_at=when, recent_times=recent, txn_count=count, amount_sum=total
        )
        assert reason is None, f"{cid} at {when}: {reason}"
        note_posting(recent, when, limits)
        count, total = count + 1, total + amount


def test_bursts_and_outliers_are_brought_within_the_ledger_limits() -> None:
    """A burst of 45 transactions in 8 minutes and a 1,000,000 RUB outlier after small ones: after
    ``within_ledger_limits`` the ledger's own check lets every remaining transaction through."""
    burst_t = np.arange(45) * 10
    small_t = 10_000 + np.arange(13) * 600
    c = np.concatenate([np.zeros(45, dtype=np.int64), np.ones(13, dtype=np.int64)])
    t = np.concatenate([burst_t, small_t])
    cents = np.concatenate([np.full(45, 50_000), np.full(12, 10_000), [100_000_000]])
    zeros = np.zeros(len(c), dtype=np.int64)
    rows = Rows(c=c, t=t, type=zeros, cat=zeros, ch=zeros, reg=zeros, cents=cents, inc=zeros - 1)
    kept = within_ledger_limits(rows, RULES.fraud)
    assert (kept.c == 0).sum() == RULES.fraud.velocity_max  # the 31st and later within the hour are dropped
    assert kept.cents[-1] < 50 * 100 * 100
    assert kept.cents[-1] > 0
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for customer in (0, 1):
        recent: list[int] = []
        count, total = 0, Decimal(0)
        for at, amount in zip(kept.t[kept.c == customer], kept.cents[kept.c == customer], strict=True):
            when, money = start + dt.timedelta(seconds=int(at)), Decimal(int(amount)) / 100
            reason = fraud_reason_for_earning(
                RULES.fraud,
                amount=money,
                occurred_at=when,
                recent_times=recent,
                txn_count=count,
                amount_sum=total,
            )
            assert reason is None
            note_posting(recent, when, RULES.fraud)
            count, total = count + 1, total + money


def test_completions_are_what_the_ledger_rules_decide(history: History) -> None:
    """Recompute every completion with ``compute_earning`` over each activation's window and compare."""
    t = history.txns.sort_values(["occurred_at", "transaction_id"], kind="stable")
    by_customer = dict(iter(t.groupby("customer_id", sort=False)))  # a GroupBy has a .keys attribute
    acts = history.events[history.events["event"] == "activated"]
    expected: set[tuple[str, pd.Timestamp]] = set()
    for aid, a in enumerate(acts.itertuples()):
        offer = history.offers.loc[a.offer_id]
        effect = OfferEffect(
            activation_id=aid,
            kind=offer["kind"],
            multiplier=offer["multiplier"],
            bonus_points=int(offer["bonus_points"]),
            threshold=offer["threshold"],
            categories=frozenset(offer["categories"]) if offer["categories"] is not None else None,
            txn_types=frozenset(offer["txn_types"]) if offer["txn_types"] is not None else None,
            completed=False,
        )
        mine = by_customer.get(a.customer_id)
        if mine is None:
            continue
        until = a.occurred_at + pd.Timedelta(days=int(offer["duration_days"]))
        window = mine[(mine["occurred_at"] >= a.occurred_at) & (mine["occurred_at"] < until)]
        for txn in window.itertuples():
            earning = compute_earning(
                RULES,
                txn_type=txn.type,
                amount=txn.amount,
                category=txn.category,
                tier_spend=Decimal(0),
                offers=[effect],
            )
            if aid in earning.completed_activation_ids:
                expected.add((a.decision_id, txn.occurred_at))
                break
    done = history.events[history.events["event"] == "completed"]
    assert len(expected) > 100
    assert set(zip(done["decision_id"], done["occurred_at"], strict=True)) == expected
