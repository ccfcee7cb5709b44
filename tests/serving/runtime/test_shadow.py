"""The shadow report on hand-made decision rows: agreement, and IPS/SNIPS/DR by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loyalty_core import shadow_id
from serving.runtime import shadow_report

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
OFFERS = pd.DataFrame({"id": ["a", "b"], "value": [100.0, 50.0], "cost": [20.0, 10.0]})
MARGIN = {"a": 80.0, "b": 40.0}


def pair(
    n: int,
    served_offer: str | None,
    p: float,
    shadow_offer: str | None,
    cands: dict[str, tuple[float, float]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    did = f"d{n}"
    scores = {o: s for o, (_, s) in cands.items()}
    served = {
        "id": did,
        "customer_id": f"c{n}",
        "made_at": T0,
        "policy": "epsilon_greedy:0.1",
        "offer_id": served_offer,
        "probability": p,
        "offers": [{"offer_id": served_offer, "score": scores.get(served_offer or "", 0.0)}],
    }
    shadow = {
        "id": shadow_id(did),
        "customer_id": f"c{n}",
        "made_at": T0,
        "policy": "shadow:thompson:gaussian",
        "offer_id": shadow_offer,
        "probability": 1.0,
        "offers": [],
        "model_versions": {},
        "k": 1,
        "candidates": {o: [q, s] for o, (q, s) in cands.items()},
        "shadow_of": did,
    }
    return shadow, served


def test_agreement_and_estimates_match_a_hand_computation() -> None:
    rows = [
        pair(1, "a", 0.95, "a", {"a": (0.7, 0.5), "b": (0.3, 0.2)}),
        pair(2, "b", 0.05, "a", {"a": (0.9, 0.4), "b": (0.1, 0.3)}),
        pair(3, "a", 0.95, "b", {"a": (0.2, 0.1), "b": (0.8, 0.6)}),
        pair(4, None, 1.0, None, {}),
    ]
    shadows = [s for s, _ in rows]
    served = [c for _, c in rows]
    events = [
        {"decision_id": "d1", "offer_id": "a", "event": "completed"},
        {"decision_id": "d2", "offer_id": "b", "event": "completed"},
        {"decision_id": "d3", "offer_id": "b", "event": "completed"},  # not the served offer: no reward
        {"decision_id": "d1", "offer_id": "a", "event": "viewed"},
    ]
    report = shadow_report(shadows, served, events, OFFERS, champion="epsilon_greedy:0.1", challenger="t")
    assert report["decisions"] == 4
    assert report["agreement_rate"] == pytest.approx(2 / 4)
    # it says what its reward is, and where what a policy causes is judged
    assert report["reward"].startswith("gross margin")
    assert "no control arm" in report["reward"]
    reward = np.array([80.0, 40.0, 0.0, 0.0])
    logged = np.array([0.95, 0.05, 0.95, 1.0])
    target = np.array([0.7, 0.1, 0.2, 1.0])
    w = target / logged
    assert report["completed"] == 2
    assert report["logged_value"] == pytest.approx(reward.mean())
    assert report["estimates"]["ips"]["value"] == pytest.approx((w * reward).mean())
    assert report["estimates"]["snips"]["value"] == pytest.approx((w * reward).sum() / w.sum())
    q_logged = np.array([0.5 * 80, 0.3 * 40, 0.1 * 80, 0.0])
    q_target = np.array(
        [
            0.7 * 0.5 * 80 + 0.3 * 0.2 * 40,
            0.9 * 0.4 * 80 + 0.1 * 0.3 * 40,
            0.2 * 0.1 * 80 + 0.8 * 0.6 * 40,
            0.0,
        ]
    )
    assert report["estimates"]["dr"]["value"] == pytest.approx((q_target + w * (reward - q_logged)).mean())
    assert report["estimates"]["ips"]["n"] == 4


def test_slates_of_several_offers_are_counted_but_not_estimated() -> None:
    shadow, served = pair(1, "a", 0.9, "a", {"a": (0.9, 0.5), "b": (0.9, 0.2)})
    shadow["k"] = 2
    report = shadow_report([shadow], [served], [], OFFERS, champion="c", challenger="t")
    assert (report["decisions"], report["agreement_rate"], report["estimates"]) == (1, 1.0, {})
    assert "several offers" in report["note"]


def test_no_shadow_decisions_give_an_empty_report() -> None:
    report = shadow_report([], [], [], OFFERS, champion="greedy", challenger=None)
    assert report["decisions"] == 0
    assert report["agreement_rate"] is None
    assert report["estimates"] == {}
    assert report["note"] == "no shadow decisions logged yet"


def test_a_challenger_that_never_takes_a_logged_action_has_no_snips() -> None:
    rows = [pair(i, "a", 0.9, "b", {"a": (0.0, 0.5), "b": (1.0, 0.2)}) for i in range(3)]
    report = shadow_report(
        [s for s, _ in rows], [c for _, c in rows], [], OFFERS, champion="c", challenger="t"
    )
    assert report["agreement_rate"] == 0.0
    assert report["estimates"]["ips"]["value"] == 0.0
    assert "snips" not in report["estimates"]
    assert "snips" in report["note"]
    assert report["estimates"]["dr"]["value"] == pytest.approx(0.2 * MARGIN["b"])
