"""Point-in-time customer features: hand-computed values on a tiny real ledger, the point-in-time property,
partition independence, and columns and types as the catalogue declares."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from loyalty_core import InvalidInput
from pipelines.features import CATALOGUE, FEATURE_NAMES, KEYS, REGIONS
from pipelines.features.compute import compute_features
from pipelines.features.cutoff import known_customers, to_cutoff
from pipelines.features.extract import extract
from pipelines.features.frames import LedgerFrames, pack, unpack
from tests.pipelines.conftest import CUTOFF, RULES, random_frames


def _row(frame: pd.DataFrame, customer: str) -> dict[str, Any]:
    rows = frame[frame["customer_id"] == customer]
    assert len(rows) == 1
    return dict(rows.iloc[0])


def test_features_of_the_tiny_ledger_match_hand_computed_values(tiny_ledger: Engine) -> None:
    out = compute_features(extract(tiny_ledger, rules=RULES), CUTOFF)
    alice = _row(out, "alice")
    # Transactions before 2026-03-01: 3000 (2025-03-20 12:00), 10000 (2025-04-20 12:00), bill 5000
    # (2026-01-05 09:00), 2000 (2026-02-20 18:00), transfer 100 (2026-02-27 10:00); a5 (March) is later.
    expected = {
        "txn_count_7d": 1,
        "txn_amount_7d": 100.0,
        "txn_count_30d": 2,
        "txn_amount_30d": 2100.0,
        "txn_count_90d": 3,
        "txn_amount_90d": 7100.0,
        "txn_count_365d": 5,
        "txn_amount_365d": 20100.0,
        "txn_amount_mean_365d": 4020.0,
        "txn_amount_max_365d": 10000.0,
        "txn_amount_std_365d": math.sqrt((1020**2 + 5980**2 + 980**2 + 2020**2 + 3920**2) / 5),
        "txn_points_365d": 30 + 100 + 100 + (20 + 100) + 5,  # a3 earned the bonus offer's 100 points
        "days_since_last_txn": 1 + 14 / 24,
        "days_since_first_txn": 345.5,
        "mean_gap_days_365d": (345.5 - (1 + 14 / 24)) / 4,
        "active_days_30d": 2,
        "active_days_90d": 3,
        "active_months_12m": 4,  # 30-day periods 0 (a3, a4), 1 (a2), 10 (a1), 11 (a0)
        "spend_trend_30d": math.log1p(2100) - math.log1p(5000 / 3),
        "spend_trend_90d": math.log1p(7100) - math.log1p(0),
        "txn_trend_30d": math.log1p(2) - math.log1p(1 / 3),
        "weekend_share_365d": 1 / 5,  # 2025-04-20 was a Sunday
        "purchase_count_90d": 1,
        "bill_payment_amount_90d": 5000.0,
        "purchase_share_365d": 3 / 5,
        "transfer_share_365d": 1 / 5,
        "category_groceries_share_365d": 13000 / 20100,
        "category_utilities_share_365d": 5000 / 20100,
        "category_p2p_share_365d": 100 / 20100,
        "category_other_share_365d": 0.0,
        "categories_365d": 4,
        "channel_app_share_365d": 3 / 5,
        "channel_pos_share_365d": 2 / 5,
        "bill_day_regularity_365d": 1.0,
        "bill_months_12m": 1,
        "tenure_days": 410.0,  # joined 2025-01-15
        "age_years": 36.0,
        "gender": 0,
        "region": 0,
        "income_band": 2,
        "preferred_channel": 0,
        # Points: 30 + 100 + 100 + 50 (survey) + 120 + 5 - 20 (redeemed 2026-02-25 12:00).
        "points_balance": 385,
        "points_earned_30d": 125,
        "points_earned_90d": 275,
        "points_earned_365d": 405,
        "redemptions_90d": 1,
        "points_redeemed_365d": 20,
        "days_since_last_redemption": 3.5,
        "redemption_rate_365d": 20 / 405,
        "activities_365d": 1,
        "activity_points_365d": 50,
        # FIFO as of the cutoff: the 20 redeemed came from the 30-point lot of 2025-03-20 (expires
        # 2026-03-20), leaving 10; the 100-point lot expires 2026-04-20. The redemption of 100 on
        # 2026-03-10 has since emptied both, which the features must not see.
        "points_expiring_30d": 10,
        "points_expiring_90d": 110,
        # Tier window: the complete months March 2025 - February 2026: 3000 + 10000 + 5000 + 2000.
        "tier": 0,
        "tier_spend_12m": 20000.0,
        "spend_to_next_tier": 300000.0 - 20000.0,
        "offers_sent": 2,
        "offers_viewed": 2,
        "offers_activated": 2,
        "offers_completed": 1,
        "offers_sent_multiplier": 1,
        "offers_completed_bonus_points": 1,
        "offers_completed_multiplier": 0,
        "offer_completion_rate": 0.5,
        "offer_completion_rate_bonus_points": 1.0,
        "days_since_last_offer": 19.0,
        "days_since_last_offer_completed": 8.25,
        "offers_active": 1,  # the bonus offer until 2026-03-17; x2 expired on 2026-02-17
        "activations_365d": 2,
        "activation_completions_365d": 1,
    }
    for name, value in expected.items():
        assert alice[name] == pytest.approx(value, rel=1e-12), name
    assert math.isnan(alice["offer_completion_rate_cashback"])

    bob = _row(out, "bob")
    # 1000 (2025-12-01) + 500 (2026-02-01), 400 of the first refunded on 2026-02-10 (4 points back).
    assert (bob["tier_spend_12m"], bob["refunds_365d"], bob["refund_amount_365d"]) == (1100.0, 1, 400.0)
    assert (bob["points_balance"], bob["points_reversed_365d"]) == (11, 4)
    assert (bob["salary_day_365d"], bob["salary_day_strength_365d"]) == (1.0, 1.0)  # both on the 1st
    assert bob["region"] == REGIONS.index("other")  # "Atlantis" is not in the vocabulary
    assert math.isnan(bob["days_since_last_offer"])  # his offer was sent exactly at the cutoff

    erin = _row(out, "erin")  # no customer record; 10 USD at 90 RUB/USD, a referral the next day
    assert (erin["txn_amount_30d"], erin["points_balance"], erin["activity_points_365d"]) == (900.0, 509, 500)
    assert erin["tenure_days"] == pytest.approx(13 + 16 / 24)  # since her first fact
    assert (erin["gender"], erin["income_band"]) == (-1, -1)
    assert math.isnan(erin["age_years"])
    assert math.isnan(erin["category_groceries_share_365d"])


def test_only_customers_known_before_the_cutoff_get_a_row(tiny_ledger: Engine) -> None:
    frames = extract(tiny_ledger, rules=RULES)
    out = compute_features(frames, CUTOFF)
    # carol joins in April, dave's only transaction is on 2026-03-02
    assert list(out["customer_id"]) == ["alice", "bob", "erin"]
    assert list(known_customers(frames, "2026-06-01")) == ["alice", "bob", "carol", "dave", "erin"]
    assert (out["as_of"] == pd.Timestamp(CUTOFF)).all()
    assert list(out.columns[:2]) == list(KEYS)


def test_features_do_not_change_when_the_ledger_grows_after_the_cutoff(tiny_ledger: Engine) -> None:
    everything = compute_features(extract(tiny_ledger, rules=RULES), CUTOFF)
    before = compute_features(extract(tiny_ledger, rules=RULES, until=CUTOFF), CUTOFF)
    pd.testing.assert_frame_equal(everything, before, check_exact=True)


def test_columns_and_dtypes_follow_the_catalogue(tiny_ledger: Engine) -> None:
    out = compute_features(extract(tiny_ledger, rules=RULES), CUTOFF)
    assert tuple(out.columns) == KEYS + FEATURE_NAMES
    assert {f.name: str(out[f.name].dtype) for f in CATALOGUE} == {f.name: f.dtype for f in CATALOGUE}
    assert str(out["as_of"].dtype) == "datetime64[us, UTC]"
    assert str(out["customer_id"].dtype) == "str"
    empty = compute_features(LedgerFrames.from_frames(), CUTOFF)
    assert tuple(empty.columns) == KEYS + FEATURE_NAMES
    assert empty.empty


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_partition_of_customers_gives_the_same_rows(seed: int) -> None:
    frames = random_frames(seed)
    cutoff = "2025-11-15"
    whole = compute_features(frames, cutoff)
    ids = sorted(frames.customers["customer_id"].astype("str")) + [f"c{i:03d}" for i in range(45, 60)]
    rng = np.random.default_rng(seed)
    bucket = rng.integers(0, 4, len(ids))
    parts = [compute_features(frames.subset(np.array(ids)[bucket == b]), cutoff) for b in range(4)]
    joined = pd.concat(parts, ignore_index=True).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_exact=True)
    pd.testing.assert_frame_equal(compute_features(unpack(pack(frames)), cutoff), whole, check_exact=True)


def _shuffled(frames: LedgerFrames, seed: int) -> LedgerFrames:
    rng = np.random.default_rng(seed)
    return LedgerFrames(
        **{
            name: frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
            for name, frame in frames.items()
        }
    )


def test_row_order_of_the_input_does_not_matter() -> None:
    frames = random_frames(7)
    whole = compute_features(frames, "2025-09-01")
    pd.testing.assert_frame_equal(
        compute_features(_shuffled(frames, 1), "2025-09-01"), whole, check_exact=True
    )


# --- the point-in-time property -----------------------------------------------------------------------


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: "str" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def _with_row(frames: LedgerFrames, name: str, row: dict[str, Any]) -> LedgerFrames:
    parts = {n: _plain(f) for n, f in frames.items()}
    extra = pd.DataFrame([row])
    parts[name] = pd.concat(
        [parts[name], _plain(LedgerFrames.from_frames(**{name: extra}).__getattribute__(name))]
    )
    return LedgerFrames.from_frames(**parts)


@st.composite
def later_facts(
    draw: st.DrawFn,
) -> tuple[int, str, str, Callable[[LedgerFrames, pd.Timestamp], LedgerFrames]]:
    """A base history (by seed), a cutoff inside it, and one fact dated at or after that cutoff."""
    seed = draw(st.integers(0, 10_000))
    cutoff = str(draw(st.dates(dt.date(2024, 9, 1), dt.date(2026, 4, 1))))
    kind = draw(
        st.sampled_from(
            [
                "customers",
                "transactions",
                "refunds",
                "movements",
                "lots",
                "offer_events",
                "activations",
                "completion",
            ]
        )
    )
    # Exactly at the cutoff is the edge that matters most: features see only what is strictly before it.
    delay = pd.Timedelta(seconds=draw(st.one_of(st.just(0), st.integers(0, 400 * 86_400))))
    who = draw(st.sampled_from(["c001", "c010", "c050", "c059", "new-customer"]))
    number = draw(st.integers(1, 100_000))
    text = draw(st.sampled_from(["purchase", "bill_payment", "transfer"]))
    word = draw(st.sampled_from(["sent", "viewed", "activated", "completed", "redeem", "expire", "activity"]))

    def add(frames: LedgerFrames, cut: pd.Timestamp) -> LedgerFrames:
        when = cut + delay
        rows: dict[str, dict[str, Any]] = {
            "customers": {"customer_id": "new-customer", "joined_on": when.normalize(), "gender": "F"},
            "transactions": {
                "id": 10**6,
                "customer_id": who,
                "occurred_at": when,
                "type": text,
                "amount": number / 100,
                "category": "travel",
                "channel": "app",
                "points": number % 500,
            },
            "refunds": {
                "id": 10**6,
                "customer_id": who,
                "occurred_at": when,
                "original_at": cut - pd.Timedelta(days=3),  # refunds a purchase from before the cutoff
                "type": "purchase",
                "amount": number / 100,
            },
            "movements": {
                "id": 10**6,
                "customer_id": who,
                "effective_at": when,
                "kind": word,
                "account": "points",
                "points": -(number % 300),
            },
            "lots": {
                "id": 10**6,
                "customer_id": who,
                "earned_at": when,
                "expires_at": when + pd.Timedelta(days=365),
                "points": number,
            },
            "offer_events": {
                "id": 10**6,
                "customer_id": who,
                "offer_id": "o-bonus_points",
                "offer_kind": "bonus_points",
                "duration_days": 14,
                "event": word,
                "occurred_at": when,
            },
            "activations": {
                "id": 10**6,
                "customer_id": who,
                "offer_id": "o-multiplier",
                "offer_kind": "multiplier",
                "activated_at": when,
                "expires_at": when + pd.Timedelta(days=14),
                "completed_at": when + pd.Timedelta(days=1),
            },
        }
        if kind in rows:
            return _with_row(frames, kind, rows[kind])
        # "completion": an activation from before the cutoff completes at or after it.
        acts = frames.activations.copy()
        open_ = (acts["activated_at"] < cut) & acts["completed_at"].isna()
        acts.loc[open_, "completed_at"] = when
        return LedgerFrames(**{**dict(frames.items()), "activations": acts})

    return seed, cutoff, kind, add


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(later_facts())
def test_a_fact_dated_after_the_cutoff_changes_no_feature(
    case: tuple[int, str, str, Callable[[LedgerFrames, pd.Timestamp], LedgerFrames]],
) -> None:
    seed, cutoff, _, add = case
    frames = random_frames(seed, customers=60, transactions=300)
    before = compute_features(frames, cutoff)
    after = compute_features(add(frames, to_cutoff(cutoff)), cutoff)
    pd.testing.assert_frame_equal(after, before, check_exact=True)


def test_the_property_can_fail_a_feature_that_peeks() -> None:
    """The property's additions do reach the features once the cutoff moves past them."""
    frames = random_frames(3, customers=60, transactions=300)
    cut = to_cutoff("2025-06-01")
    grown = _with_row(
        frames,
        "transactions",
        {
            "id": 10**6,
            "customer_id": "c001",
            "occurred_at": cut,
            "type": "purchase",
            "amount": 5.0,
            "points": 0,
        },
    )
    later = "2025-06-02"
    assert not compute_features(grown, later).equals(compute_features(frames, later))
    pd.testing.assert_frame_equal(compute_features(grown, cut), compute_features(frames, cut))


# --- inputs and the catalogue ----------------------------------------------------------------------------


def test_bad_inputs_name_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        compute_features(LedgerFrames.from_frames(), dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="not a date"):
        to_cutoff("first of may")
    with pytest.raises(InvalidInput, match="transactions needs a column 'occurred_at'"):
        LedgerFrames.from_frames(transactions=pd.DataFrame({"id": [1], "customer_id": ["a"]}))
    with pytest.raises(InvalidInput, match=r"lots.customer_id is missing in row 1"):
        LedgerFrames.from_frames(
            lots=pd.DataFrame(
                {
                    "id": [1, 2],
                    "customer_id": ["a", None],
                    "earned_at": [CUTOFF, CUTOFF],
                    "expires_at": [CUTOFF, CUTOFF],
                    "points": [1, 2],
                }
            )
        )
