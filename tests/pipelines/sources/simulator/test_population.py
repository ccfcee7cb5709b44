"""The simulated customers and offers are plausible."""

from __future__ import annotations

from decimal import Decimal

from tests.pipelines.sources.simulator.conftest import History


def test_customers_and_offers_are_plausible(history: History) -> None:
    c = history.customers
    assert c["customer_id"].tolist() == [f"C{i:07d}" for i in range(1, 1501)]
    assert set(c["gender"]) == {"F", "M"}
    assert set(c["income_band"]) == {"low", "middle", "upper_middle", "high"}
    assert set(c["channel"]) == {"app", "web", "branch", "pos"}
    assert c["region"].value_counts().index[0] == "Moscow"
    assert 8 <= c["region"].nunique() <= 15
    assert (c["income"].map(Decimal) > 0).all()
    assert ((2025 - c["birth_year"]).between(18, 85)).all()
    kinds = history.offers["kind"]
    assert 8 <= len(kinds) <= 12
    assert set(kinds) == {"multiplier", "bonus_points", "cashback", "informational"}
    threshold_kinds = kinds.isin(["bonus_points", "cashback"])
    assert history.offers.loc[threshold_kinds, "threshold"].notna().all()
    assert (history.offers.loc[kinds != "multiplier", "multiplier"] == Decimal(1)).all()
