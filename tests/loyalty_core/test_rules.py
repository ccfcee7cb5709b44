"""Earning arithmetic from the rules file: the brief's programme exactly, and what rules can add to it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import ConfigurationError
from loyalty_core.rules import (
    OfferEffect,
    add_spend,
    compute_earning,
    fraud_reason_for_earning,
    fraud_reason_for_redemption,
    note_posting,
    parse_rules,
    reversal_points,
    rolling_spend,
    tier_window,
)
from loyalty_core.rules_file import load_rules

BRIEF = load_rules(DEFAULT_RULES)
ZERO = Decimal(0)


def earn(rules=BRIEF, txn_type="purchase", amount="0", category=None, spend=ZERO, offers=(), used=None):  # type: ignore[no-untyped-def]
    return compute_earning(
        rules,
        txn_type=txn_type,
        amount=Decimal(amount),
        category=category,
        tier_spend=spend,
        offers=offers,
        cap_used=used,
    )


@pytest.mark.parametrize(
    ("txn_type", "amount", "points"),
    [
        ("purchase", "99.99", 0),
        ("purchase", "100.00", 1),
        ("purchase", "1999.99", 19),
        ("bill_payment", "99.99", 0),
        ("bill_payment", "250.00", 4),
        ("transfer", "0.01", 5),
        ("transfer", "1000000.00", 5),
    ],
)
def test_brief_programme_for_base_tier(txn_type: str, amount: str, points: int) -> None:
    result = earn(txn_type=txn_type, amount=amount)
    assert (result.points, result.tier, result.multiplier) == (points, "base", Decimal(1))


@given(cents=st.integers(min_value=1, max_value=10**11))
def test_purchase_points_are_floor_of_hundreds(cents: int) -> None:
    amount = Decimal(cents) / 100
    assert earn(amount=str(amount)).points == cents // 10_000


def test_tier_boost_applies_from_rolling_spend() -> None:
    assert earn(amount="1000", spend=Decimal("299999.99")).points == 10
    silver = earn(amount="1000", spend=Decimal("300000"))
    assert (silver.tier, silver.points) == ("silver", 12)  # floor(10 x 1.25)
    assert earn(amount="1000", spend=Decimal("1000000")).points == 15


def test_tier_window_is_the_twelve_complete_months_before() -> None:
    assert tier_window(dt.datetime(2026, 3, 15, tzinfo=dt.UTC)) == ("2025-03", "2026-02")
    assert tier_window(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)) == ("2025-12", "2026-11")
    assert tier_window(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == ("2025-01", "2025-12")


def test_spend_by_month_rolls_and_forgets_old_months() -> None:
    spend: dict[str, Decimal] = {}
    add_spend(spend, dt.date(2025, 1, 31), Decimal(100))
    add_spend(spend, dt.date(2025, 12, 1), Decimal(50))
    assert rolling_spend(spend, dt.datetime(2025, 12, 31, tzinfo=dt.UTC)) == 100  # December is not complete
    assert rolling_spend(spend, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == 150
    assert rolling_spend(spend, dt.datetime(2026, 2, 1, tzinfo=dt.UTC)) == 50
    add_spend(spend, dt.date(2026, 3, 1), Decimal(-20))
    assert spend == {"2025-12": Decimal(50), "2026-03": Decimal(-20)}


def test_velocity_memory_keeps_only_what_can_still_count() -> None:
    limits = BRIEF.fraud  # 30 postings per hour
    recent: list[int] = []
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(40):
        note_posting(recent, at + dt.timedelta(seconds=i), limits)
    assert len(recent) == 30
    note_posting(recent, at + dt.timedelta(hours=2), limits)
    assert recent == [int((at + dt.timedelta(hours=2)).timestamp())]


RICH = parse_rules(
    {
        "earn": [
            {"id": "purchase", "types": ["purchase"], "per_amount": "100", "points": 1},
            {
                "id": "travel",
                "types": ["purchase"],
                "categories": ["travel"],
                "per_amount": "100",
                "points": 2,
            },
            {
                "id": "fuel",
                "types": ["purchase"],
                "categories": ["fuel"],
                "fixed_points": 10,
                "min_amount": "500",
            },
            {
                "id": "bills",
                "types": ["bill_payment"],
                "per_amount": "100",
                "points": 2,
                "cap_points": 100,
                "cap_period": "month",
            },
        ]
    }
)


def test_category_bonus_minimum_and_cap() -> None:
    assert earn(RICH, amount="1000", category="travel").points == 30
    assert earn(RICH, amount="499.99", category="fuel").points == 4
    assert earn(RICH, amount="500", category="fuel").points == 15
    capped = earn(RICH, txn_type="bill_payment", amount="10000", used={"bills": 90})
    assert (capped.points, capped.rule_points) == (10, {"bills": 10})
    assert earn(RICH, txn_type="bill_payment", amount="10000", used={"bills": 100}).points == 0


def _offer(kind: str, **kw: object) -> OfferEffect:
    base: dict[str, object] = {
        "activation_id": 1,
        "kind": kind,
        "multiplier": Decimal(1),
        "bonus_points": 0,
        "threshold": None,
        "categories": None,
        "txn_types": None,
        "completed": False,
    }
    base.update(kw)
    return OfferEffect(**base)  # type: ignore[arg-type]


def test_offers_multiply_without_stacking_and_bonus_pays_once() -> None:
    double_travel = _offer("multiplier", multiplier=Decimal(2), categories=frozenset({"travel"}))
    triple = _offer("multiplier", activation_id=2, multiplier=Decimal(3))
    assert earn(amount="1000", category="groceries", offers=[double_travel]).points == 10
    result = earn(amount="1000", category="travel", offers=[double_travel, triple])
    assert (result.points, result.multiplier, result.activation_id) == (30, Decimal(3), 2)
    bonus = _offer("bonus_points", activation_id=3, bonus_points=500, threshold=Decimal(3000))
    assert earn(amount="2999.99", offers=[bonus]).points == 29
    paid = earn(amount="3000", offers=[bonus])
    assert (paid.points, paid.completed_activation_ids) == (530, (3,))
    done = _offer("bonus_points", activation_id=3, bonus_points=500, threshold=Decimal(3000), completed=True)
    assert earn(amount="3000", offers=[done]).points == 30


def test_cashback_offer_completes_at_its_threshold_without_points() -> None:
    cash = _offer("cashback", activation_id=4, threshold=Decimal(2000), categories=frozenset({"fuel"}))
    assert earn(amount="5000", category="groceries", offers=[cash]).completed_activation_ids == ()
    assert earn(amount="1999", category="fuel", offers=[cash]).completed_activation_ids == ()
    paid = earn(amount="2000", category="fuel", offers=[cash])
    assert (paid.points, paid.completed_activation_ids) == (20, (4,))


def test_fx_rates_are_checked_and_convert_exactly() -> None:
    rules = parse_rules({"currency": "rub", "fx": {"usd": "92.5"}})
    assert rules.in_home_currency(Decimal("10.01"), "USD") == Decimal("925.93")
    assert rules.in_home_currency(Decimal("10.01"), "RUB") == Decimal("10.01")
    with pytest.raises(ConfigurationError, match="no fx rate for EUR"):
        rules.in_home_currency(Decimal(1), "EUR")
    for bad in ({"RUB": "1"}, {"dollars": "90"}, {"USD": "0"}, {"USD": "-1"}):
        with pytest.raises(ConfigurationError, match="fx"):
            parse_rules({"currency": "RUB", "fx": bad})


@given(
    points=st.integers(min_value=0, max_value=10**6),
    cents=st.integers(min_value=1, max_value=10**9),
    cuts=st.lists(st.integers(min_value=1, max_value=99), max_size=5),
)
def test_partial_reversals_add_up_to_the_original_points(points: int, cents: int, cuts: list[int]) -> None:
    amount = Decimal(cents) / 100
    refunded = Decimal(0)
    total = 0
    for pct in cuts:
        part = (amount - refunded) * pct / 100
        part = part.quantize(Decimal("0.01"))
        if part <= 0:
            continue
        total += reversal_points(points, amount, refunded, part)
        refunded += part
    total += reversal_points(points, amount, refunded, amount - refunded)
    assert total == points


def test_fraud_checks() -> None:
    limits = BRIEF.fraud
    at = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    quiet = {"recent_times": [], "txn_count": 0, "amount_sum": ZERO}
    assert fraud_reason_for_earning(limits, amount=Decimal(1000), occurred_at=at, **quiet) is None
    huge = fraud_reason_for_earning(limits, amount=Decimal("5000000.01"), occurred_at=at, **quiet)
    assert huge is not None
    assert huge.startswith("unusual_amount")
    odd = fraud_reason_for_earning(
        limits,
        amount=Decimal(60000),
        occurred_at=at,
        recent_times=[],
        txn_count=10,
        amount_sum=Decimal(10000),
    )
    assert odd is not None
    assert "mean" in odd
    burst = [int((at - dt.timedelta(minutes=i)).timestamp()) for i in range(30)]
    fast = fraud_reason_for_earning(
        limits, amount=Decimal(10), occurred_at=at, recent_times=burst, txn_count=0, amount_sum=ZERO
    )
    assert fast is not None
    assert fast.startswith("velocity")
    assert fraud_reason_for_redemption(limits, points=1000, recently_earned=800) is not None
    assert fraud_reason_for_redemption(limits, points=1000, recently_earned=799) is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"earn": [{"id": "x", "types": ["refund"], "fixed_points": 1}]}, "types"),
        ({"earn": [{"id": "x", "types": ["purchase"]}]}, "exactly one of"),
        ({"earn": [{"id": "x", "types": ["purchase"], "per_amount": "-1", "points": 1}]}, "non-negative"),
        ({"earn": [{"id": "x", "types": ["purchase"], "fixed_points": 1, "cap_points": 5}]}, "caps"),
        ({"tiers": {"levels": [{"name": "a", "min_spend": "10", "boost": "1"}]}}, "lowest tier"),
    ],
)
def test_bad_rules_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_rules(doc)


def test_missing_rules_file_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LOYALTY_RULES"):
        load_rules(tmp_path / "none.toml")
