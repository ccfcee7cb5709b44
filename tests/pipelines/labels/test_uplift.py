"""Uplift labels on a hand-made campaign: every row's outcome is checked against the offer rule by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine

from loyalty_core import Decision, InvalidInput
from pipelines.features.frames import LedgerFrames
from pipelines.labels.uplift import COLUMNS, has_control, read_decisions, uplift_labels

T0 = pd.Timestamp("2026-03-02T06:00:00Z")
CATALOGUE = pd.DataFrame(
    {
        "offer_id": ["BONUS1K", "MULT_GROC", "INFO"],
        "kind": ["bonus_points", "multiplier", "informational"],
        "threshold": [1000.0, None, None],
        "categories": [None, ["groceries"], None],
        "txn_types": [["purchase"], ["purchase"], None],
        "duration_days": [7, 14, 7],
    }
)


def at(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def decisions() -> pd.DataFrame:
    rows = [
        ("d-c1", "c1", None, 0.3),  # control
        ("d-c2", "c2", None, 0.3),  # control
        ("d-t1", "t1", "BONUS1K", 0.2),
        ("d-t2", "t2", "MULT_GROC", 0.4),
        ("d-i", "i1", "INFO", 0.1),
    ]
    return pd.DataFrame(
        {
            "decision_id": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "made_at": [T0] * len(rows),
            "policy": ["campaign:CMP1"] * len(rows),
            "offer_id": [r[2] for r in rows],
            "probability": [r[3] for r in rows],
        }
    )


def frames() -> LedgerFrames:
    txns = [
        # c1: a 1,500 fuel purchase on day 2 meets BONUS1K (any category), not MULT_GROC (groceries only)
        ("c1", at(2), "purchase", 1500.0, "fuel"),
        # c2: a 1,500 groceries purchase on day 8: too late for BONUS1K (7 days), in time for MULT_GROC (14)
        ("c2", at(8), "purchase", 1500.0, "groceries"),
        # c2 before the campaign: does not count
        ("c2", at(-1), "purchase", 5000.0, "groceries"),
        # t1 completed BONUS1K with this purchase; t2 bought groceries below no threshold but did not activate
        ("t1", at(3), "purchase", 1200.0, "online"),
        ("t2", at(1), "purchase", 300.0, "groceries"),
        # a bill payment never meets purchase-only offers
        ("c1", at(1), "bill_payment", 5000.0, "utilities"),
    ]
    transactions = pd.DataFrame(
        {
            "id": range(1, len(txns) + 1),
            "customer_id": [t[0] for t in txns],
            "occurred_at": [t[1] for t in txns],
            "type": [t[2] for t in txns],
            "amount": [t[3] for t in txns],
            "category": [t[4] for t in txns],
            "points": 0,
        }
    ).sort_values("occurred_at", ignore_index=True)
    events = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "customer_id": ["t1", "t2", "t1", "i1"],
            "offer_id": ["BONUS1K", "MULT_GROC", "BONUS1K", "INFO"],
            "offer_kind": ["bonus_points", "multiplier", "bonus_points", "informational"],
            "duration_days": [7, 14, 7, 7],
            "event": ["sent", "sent", "completed", "sent"],
            "occurred_at": [T0, T0, at(3), T0],
            "decision_id": ["d-t1", "d-t2", "d-t1", "d-i"],
        }
    )
    return LedgerFrames.from_frames(transactions=transactions, offer_events=events)


def test_each_arm_gets_treated_and_control_rows_with_their_outcomes() -> None:
    labels = uplift_labels(frames(), decisions(), CATALOGUE, end=at(30))
    assert list(labels.columns) == list(COLUMNS)
    assert set(labels["offer_id"]) == {"BONUS1K", "MULT_GROC"}  # informational offers are no arm
    got = {(r.customer_id, r.offer_id): (r.treated, r.outcome, r.met) for r in labels.itertuples()}
    assert got == {
        ("c1", "BONUS1K"): (0, 1, 1),
        ("c1", "MULT_GROC"): (0, 0, 0),
        ("c2", "BONUS1K"): (0, 0, 0),
        ("c2", "MULT_GROC"): (0, 1, 1),
        ("t1", "BONUS1K"): (1, 1, 1),  # completed; its purchase met the rule too
        ("t2", "MULT_GROC"): (1, 0, 1),  # met the rule but never completed (no activation)
    }
    control = labels[labels["treated"] == 0]
    assert (control["probability"] == 0.3).all()
    assert labels.set_index("customer_id").loc["t2", "probability"] == 0.4
    assert (labels["cutoff"] == T0.floor("D")).all()
    assert (labels["valid_until"] - labels["made_at"]).dt.days.isin([7, 14]).all()


def test_windows_not_over_by_the_end_of_the_data_are_left_out() -> None:
    labels = uplift_labels(frames(), decisions(), CATALOGUE, end=at(10))
    assert set(labels["offer_id"]) == {"BONUS1K"}  # the 14-day arm's window ends after day 10
    assert uplift_labels(frames(), decisions(), CATALOGUE, made_from=at(1), end=at(30)).empty


def test_a_catalogue_without_durations_is_refused() -> None:
    with pytest.raises(InvalidInput, match="duration_days"):
        uplift_labels(frames(), decisions(), CATALOGUE.drop(columns=["duration_days"]), end=at(30))


def test_decisions_are_read_back_from_the_ledger(engine: Engine) -> None:
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        for r in decisions().itertuples():
            s.add(
                Decision(
                    id=r.decision_id,
                    customer_id=r.customer_id,
                    made_at=r.made_at.to_pydatetime(),
                    policy=r.policy,
                    offer_id=r.offer_id,
                    probability=r.probability,
                    served=True,
                    channel="app",
                )
            )
        s.add(
            Decision(
                id="svc-1",
                customer_id="c1",
                made_at=at(1).to_pydatetime(),
                policy="greedy",
                offer_id="BONUS1K",
                probability=1.0,
                served=True,
            )
        )
    read = read_decisions(engine)
    assert sorted(read["decision_id"]) == sorted(decisions()["decision_id"])  # campaigns only
    assert read["made_at"].dt.tz is not None
    assert has_control(read)
    assert not has_control(read[read["offer_id"].notna()])
    assert read_decisions(engine, until=T0.to_pydatetime()).empty
