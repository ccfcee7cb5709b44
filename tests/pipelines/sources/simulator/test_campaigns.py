"""Campaigns and the offer funnel: order, validity windows, logged probabilities, rates as the truth says."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from tests.pipelines.sources.simulator.conftest import History


def test_funnel_order_and_validity_windows(history: History) -> None:
    e = history.events
    assert e["event_id"].is_unique
    assert e["occurred_at"].is_monotonic_increasing
    assert not e.duplicated(["decision_id", "event"]).any()
    wide = e.pivot(index="decision_id", columns="event", values="occurred_at")
    offer = e.drop_duplicates("decision_id").set_index("decision_id")["offer_id"]
    window = pd.to_timedelta(offer.map(history.duration), unit="D").reindex(wide.index)
    kind = offer.map(history.offers["kind"]).reindex(wide.index)
    assert wide["sent"].notna().all()
    viewed, activated, completed = wide["viewed"], wide["activated"], wide["completed"]
    assert (viewed.dropna() >= wide["sent"][viewed.notna()]).all()
    assert (viewed.dropna() < (wide["sent"] + window)[viewed.notna()]).all()
    assert viewed[activated.notna()].notna().all(), "activated without being viewed"
    assert (activated.dropna() >= viewed[activated.notna()]).all()
    assert (activated.dropna() < (wide["sent"] + window)[activated.notna()]).all()
    assert activated[completed.notna()].notna().all(), "completed without being activated"
    # The ledger's window: from the activation, for the offer's duration.
    assert (completed.dropna() >= activated[completed.notna()]).all()
    assert (completed.dropna() < (activated + window)[completed.notna()]).all()
    assert wide.loc[kind == "informational", ["activated", "completed"]].isna().all().all()
    control = history.decisions.loc[history.decisions["offer_id"].isna(), "decision_id"]
    assert len(control)
    assert not e["decision_id"].isin(control).any()
    assert (
        e["offer_id"] == e["decision_id"].map(history.decisions.set_index("decision_id")["offer_id"])
    ).all()
    counts = e["event"].value_counts()
    assert counts["sent"] > counts["viewed"] > counts["activated"] > counts["completed"] > 0


def test_assignment_probabilities_are_the_ones_used(history: History) -> None:
    """Logged probabilities are the campaign's per-channel arm probabilities, and arms come up that often."""
    d = history.decisions
    campaigns = {c["policy"]: c for c in history.manifest["campaigns"]}
    assert len(campaigns) == 5
    assert set(d["policy"]) == set(campaigns)
    distinct: set[float] = set()
    for policy, camp in campaigns.items():
        mine = d[d["policy"] == policy]
        arms = {a["offer_id"]: a["probability"] for a in camp["arms"]}
        assert len(mine) == camp["customers"]
        assert mine["customer_id"].is_unique
        for channel in ("app", "web", "branch", "pos"):
            assert math.isclose(sum(p[channel] for p in arms.values()), 1.0)
        logged = [
            arms[o][ch]
            for o, ch in zip(mine["offer_id"].replace({np.nan: None}), mine["channel"], strict=True)
        ]
        assert np.array_equal(mine["probability"].to_numpy(), np.array(logged))
        for offer_id, by_channel in arms.items():
            p = mine["channel"].map(by_channel).to_numpy()
            chosen = (mine["offer_id"] == offer_id) if offer_id else mine["offer_id"].isna()
            sd = math.sqrt(float((p * (1 - p)).sum()))
            assert abs(chosen.sum() - p.sum()) <= 4.5 * sd + 1, (policy, offer_id, chosen.sum(), p.sum())
            distinct.update(by_channel.values())
    assert len(distinct) > 20  # probabilities vary across campaigns, arms and channel groups
    assert d["offer_id"].isna().mean() == pytest.approx(0.25, abs=0.1)


def _fits(history: History, made: pd.Series, days: pd.Series) -> pd.Series:
    """Decisions whose whole completion horizon (send + activation + validity) ends inside the history."""
    return made + pd.to_timedelta(2 * days + 1, unit="D") <= history.end


def test_completion_rates_match_the_truth(history: History) -> None:
    """Per offer kind, completed / sent equals the mean true p_complete_treated, within sampling error.

    The truth is for a customer in base state, so customers who churned (and decayed before it) are left out,
    as are decisions whose completion horizon runs past the end of the history. Given the customers'
    traits, outcomes are independent Bernoulli draws: the tolerance is 4 standard errors plus 0.02.
    """
    d = history.decisions
    stay = set(history.truth.loc[history.truth["churn_at"].isna(), "customer_id"])
    sent = d[d["offer_id"].notna() & d["customer_id"].isin(stay)].copy()
    sent = sent[_fits(history, sent["made_at"], sent["offer_id"].map(history.duration))]
    done = set(history.events.loc[history.events["event"] == "completed", "decision_id"])
    sent["done"] = sent["decision_id"].isin(done)
    sent = sent.merge(history.effects, on=["customer_id", "offer_id"])
    sent["kind"] = sent["offer_id"].map(history.offers["kind"])
    for kind, g in sent.groupby("kind"):
        p = g["p_complete_treated"].to_numpy()
        if kind == "informational":
            assert not g["done"].any()
            assert (p == 0).all()
            continue
        tolerance = 4 * math.sqrt(float((p * (1 - p)).sum())) / len(g) + 0.02
        assert len(g) > 300, kind
        assert abs(g["done"].mean() - p.mean()) <= tolerance, (kind, g["done"].mean(), p.mean(), tolerance)


def test_control_group_meets_offer_conditions_as_the_truth_says(history: History) -> None:
    """No-offer group: the share meeting each offer's condition in its validity = mean p_complete_control."""
    d = history.decisions
    stay = set(history.truth.loc[history.truth["churn_at"].isna(), "customer_id"])
    control = d[d["offer_id"].isna() & d["customer_id"].isin(stay)][["decision_id", "customer_id", "made_at"]]
    t = history.txns[history.txns["customer_id"].isin(control["customer_id"])]
    t = t.merge(control, on="customer_id")
    t["amount"] = t["amount"].map(float)
    checked = 0
    for offer_id, offer in history.offers.iterrows():
        if offer["kind"] == "informational":
            continue
        days = int(offer["duration_days"])
        mine = control[_fits(history, control["made_at"], pd.Series(days, index=control.index))]
        w = t[t["decision_id"].isin(mine["decision_id"])]
        w = w[
            (w["occurred_at"] >= w["made_at"]) & (w["occurred_at"] < w["made_at"] + pd.Timedelta(days=days))
        ]
        if offer["txn_types"] is not None:
            w = w[w["type"].isin(list(offer["txn_types"]))]
        if offer["categories"] is not None:
            w = w[w["category"].isin(list(offer["categories"]))]
        if offer["kind"] in ("bonus_points", "cashback"):
            w = w[w["amount"] >= float(offer["threshold"])]
        met = mine["decision_id"].isin(set(w["decision_id"]))
        truth = history.effects[history.effects["offer_id"] == offer_id].set_index("customer_id")
        p = mine["customer_id"].map(truth["p_complete_control"]).to_numpy()
        # 0.03 allows for the bill-day phase (campaigns start near the same day of each month).
        tolerance = 4 * math.sqrt(float((p * (1 - p)).sum())) / len(mine) + 0.03
        assert abs(met.mean() - p.mean()) <= tolerance, (offer_id, met.mean(), p.mean(), tolerance)
        checked += 1
    assert checked == 10


def test_offer_funnel_and_decisions_agree_on_customers(history: History) -> None:
    decisions = history.decisions.set_index("decision_id")
    e = history.events
    assert (e["customer_id"] == e["decision_id"].map(decisions["customer_id"])).all()
    assert (e["channel"] == e["decision_id"].map(decisions["channel"])).all()
    sent = e[e["event"] == "sent"]
    made = sent["decision_id"].map(decisions["made_at"])
    assert ((sent["occurred_at"] - made) < pd.Timedelta(hours=2)).all()
    per_customer: dict[str, int] = defaultdict(int)
    for cid in decisions["customer_id"]:
        per_customer[cid] += 1
    assert max(per_customer.values()) <= len(history.manifest["campaigns"])
