"""The ledger's own checks, which also guard the importers: the same bounds and grammar as the API, on both
databases, so that no caller can put into a column what PostgreSQL refuses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from loyalty_core import activities, bounds, journal, ledger, offers, validation
from loyalty_core.config import DEFAULT_RULES
from loyalty_core.errors import InvalidInput
from loyalty_core.rules_file import load_rules
from loyalty_core.schema import Activation

RULES = load_rules(DEFAULT_RULES)
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def post(engine: Engine, amount: Any, *, tid: str = "t-1") -> dict[str, Any]:
    txn = ledger.TransactionIn(tid, "c-1", "purchase", amount, T0)
    return journal.in_transaction(
        engine, lambda s: ledger.post_transaction(s, txn, rules=RULES, actor="test", now=T0).response
    )


OFF_GRAMMAR: list[Any] = [
    "1_000",
    "\uff11\uff10",  # full-width digits
    "\u0661\u0660",  # Arabic-Indic digits
    " 10",
    "10 ",
    "10\n",
    "1e3",
    "10.005",
    0.1 + 0.2,
    Decimal("10.001"),
    True,
]
EXACT: list[tuple[Any, str]] = [
    ("10.5", "10.50"),
    (Decimal("10.050"), "10.05"),
    (12.5, "12.50"),
    (np.int64(7), "7.00"),
    (Decimal("1E+2"), "100.00"),
]


def test_check_amount_admits_exactly_the_grammar() -> None:
    """The ledger's check (the importers use it) refuses what the API refuses and reads the rest exactly."""
    admitted, fields = [], set()
    for amount in OFF_GRAMMAR:
        try:
            validation.check_amount(amount)
        except InvalidInput as exc:
            fields.add(exc.details["field"])
        else:
            admitted.append(repr(amount))
    assert not admitted, f"amounts outside the grammar admitted: {admitted}"
    assert fields == {"amount"}
    assert [str(validation.check_amount(a)) for a, _ in EXACT] == [e for _, e in EXACT]


def test_a_posting_with_an_off_grammar_amount_is_refused_and_writes_nothing(db_engine: Engine) -> None:
    with pytest.raises(InvalidInput):
        post(db_engine, "1_000")
    assert post(db_engine, "1000")["points"] == 10


OFFER = {"id": "o-1", "kind": "bonus_points", "duration_days": 14}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bonus_points", 2**31),  # offers.bonus_points is INTEGER
        ("min_tier", "x" * (bounds.TIER_LEN + 1)),
        ("name", "x" * (bounds.OFFER_NAME_LEN + 1)),
        ("name", "Double\x00points"),
        ("min_tier", "gold\x00"),
        ("categories", ["grocery\x00"]),
        ("cost", "1_000"),
        ("multiplier", "2.00001"),
    ],
)
def test_upsert_offer_refuses_what_its_columns_cannot_hold(db_engine: Engine, field: str, value: Any) -> None:
    spec = {**OFFER, field: value}
    with pytest.raises(InvalidInput) as caught:
        journal.in_transaction(db_engine, lambda s: offers.upsert_offer(s, spec, now=T0))
    assert caught.value.details["field"] == field


def test_upsert_offer_at_its_limits_is_stored(db_engine: Engine) -> None:
    spec = {
        **OFFER,
        "id": "o" * bounds.OFFER_ID_LEN,
        "bonus_points": bounds.BONUS_POINTS_MAX,
        "name": "é" * bounds.OFFER_NAME_LEN,
        "min_tier": "gold",
        "cost": "1000000000000.00",
    }
    offer = journal.in_transaction(db_engine, lambda s: offers.upsert_offer(s, spec, now=T0, rules=RULES))
    assert (offer.bonus_points, offer.min_tier, offer.cost) == (
        2**31 - 1,
        "gold",
        Decimal("1000000000000.00"),
    )


def test_upsert_offer_with_rules_refuses_an_unknown_tier(engine: Engine) -> None:
    spec = {**OFFER, "min_tier": "platinum"}
    with pytest.raises(InvalidInput) as caught:
        journal.in_transaction(engine, lambda s: offers.upsert_offer(s, spec, now=T0, rules=RULES))
    assert caught.value.code == "unknown_tier"


def test_activation_key_of_the_longest_ids_fits_its_column(db_engine: Engine) -> None:
    oid, cid = "o" * bounds.OFFER_ID_LEN, "c" * bounds.CUSTOMER_ID_LEN
    spec = {"id": oid, "kind": "multiplier", "multiplier": "2", "duration_days": 14}
    journal.in_transaction(db_engine, lambda s: offers.upsert_offer(s, spec, now=T0))
    late = dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert len(offers.activation_ext_id(oid, cid, late)) <= bounds.column_length(Activation.ext_id)
    activation = journal.in_transaction(
        db_engine,
        lambda s: offers.activate_offer(
            s, offer_id=oid, customer_id=cid, decision_id=None, rules=RULES, now=T0
        ),
    )
    assert activation["customer_id"] == cid


def test_run_write_reports_replays(engine: Engine) -> None:
    def award(s: Any) -> dict[str, Any]:
        return activities.award_activity(
            s, activity_id="a-1", customer_id="c-1", kind="social", rules=RULES, actor="test", now=T0
        )

    first, again = journal.run_write(engine, award), journal.run_write(engine, award)
    assert (first.replayed, again.replayed) == (False, True)
    assert first.value == again.value
