"""Offer ranking, campaigns and the shadow policy on a simulated bank with real champions.

The simulated history ends in 2025, the service decides "now": no activation of the history runs any more
and no contact is recent, so every customer starts with a clean slate of frequency caps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty_core import Decision, OfferEvent
from tests.serving.conftest import World, scored_app, use_mlflow_store

Headers = dict[str, dict[str, str]]
OFFER_VALUE = {
    "MULT2_GROCERIES": (150, 60),
    "MULT3_RESTAURANTS": (220, 90),
    "MULT2_FUEL": (130, 50),
    "MULT5_TRAVEL": (1500, 600),
    "MULT2_BILLS": (200, 80),
    "BONUS500_ONLINE5K": (1200, 500),
    "BONUS300_ANY3K": (650, 300),
    "BONUS200_P2P1K": (350, 200),
    "CASHBACK300_PHARMACY2K": (600, 300),
    "CASHBACK1000_CLOTHING10K": (2600, 1000),
}

APP_ONLY = {"MULT2_FUEL", "MULT2_BILLS"}  # offers the app (or a till) shows, the web does not
WEB_ONLY: set[str] = set()  # every web offer is in the app too


@pytest.fixture
def greedy(world: World, world_db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The service with a greedy policy and no shadow: every choice is certain."""
    use_mlflow_store(monkeypatch, world.mlflow_uri)
    with TestClient(scored_app(world_db, world, exploration_epsilon=0.0, shadow_policy="none")) as client:
        yield client


def expected_values(client: TestClient, auth: Headers, customers: list[str]) -> dict[tuple[str, str], float]:
    """EV per (customer, offer) from /v1/score's propensity and uplift: uplift x value - p x cost, or
    p x (value - cost) where the uplift model has no estimate."""
    body = client.post("/v1/score", json={"customer_ids": customers}, headers=auth["core"]).json()
    out = {}
    for s in body["scores"]:
        for o in s["offers"]:
            value, cost = OFFER_VALUE.get(o["offer_id"], (0, 0))
            p, u = o["propensity"], o["uplift"]
            out[s["customer_id"], o["offer_id"]] = p * (value - cost) if u is None else u * value - p * cost
    return out


def generous(client: TestClient, auth: Headers, world: World, minimum: int) -> list[str]:
    """Customers with at least ``minimum`` offers worth sending (positive expected value), most first: the
    uplift model finds no gain at all for some customers, and they rightly get no offer."""
    ev = expected_values(client, auth, list(world.customers))
    count = {c: sum(ev[c, o] > 0 for o in OFFER_VALUE if (c, o) in ev) for c in world.customers}
    chosen = sorted((c for c in world.customers if count[c] >= minimum), key=lambda c: -count[c])
    assert chosen, f"no customer of the world has {minimum} offers worth sending"
    return chosen


def rank(client: TestClient, auth: Headers, customer: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/offers/rank", json={"customer_id": customer, **extra}, headers=auth["marketing"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def decision(engine: Engine, decision_id: str) -> Decision:
    with Session(engine) as s:
        row = s.get(Decision, decision_id)
        assert row is not None
        s.expunge(row)
        return row


def test_a_ranking_is_logged_with_its_probabilities_beside_the_shadow_choice(
    scored: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    customer = generous(scored, auth, world, 4)[0]
    answer = rank(scored, auth, customer, k=2, channel="app")
    assert answer["policy"] == "epsilon_greedy:0.05"
    assert answer["known"] is True
    assert set(answer["model_versions"]) == {"offers", "uplift", "features", "catalogue"}
    assert 1 <= len(answer["offers"]) <= 2
    ev = expected_values(scored, auth, [customer])
    for i, offer in enumerate(answer["offers"], start=1):
        assert offer["rank"] == i
        assert 0 < offer["probability"] <= 1
        assert offer["expected_value"] == pytest.approx(ev[customer, offer["offer_id"]])
        assert offer["source"] == "uplift"  # the world has an uplift champion
        assert offer["reasons"], "every shown offer says why"
        assert {"feature", "phrase", "contribution", "value"} <= set(offer["reasons"][0])
    served = decision(world_db, answer["decision_id"])
    assert (served.customer_id, served.served, served.channel) == (customer, True, "app")
    assert served.offer_id == answer["offers"][0]["offer_id"]
    assert served.probability == pytest.approx(answer["offers"][0]["probability"])
    assert [o["offer_id"] for o in served.offers or []] == [o["offer_id"] for o in answer["offers"]]
    versions = served.model_versions or {}
    assert versions["offers"] == answer["model_versions"]["offers"]
    assert served.k == 2
    # every candidate's probability is kept, shown or not: a slate of 2 has probabilities summing to 2
    assert sum(p for p, _ in (served.candidates or {}).values()) == pytest.approx(2.0, abs=1e-5)
    shadow = decision(world_db, answer["decision_id"] + ".shadow")
    assert (shadow.served, shadow.policy) == (False, "shadow:thompson:gaussian")
    assert shadow.shadow_of == answer["decision_id"]
    assert set(shadow.candidates or {}) == set(served.candidates or {})


def test_feedback_and_activations_join_back_to_the_decision(
    scored: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    customer = generous(scored, auth, world, 1)[1]
    answer = rank(scored, auth, customer)
    did, offer = answer["decision_id"], answer["offers"][0]["offer_id"]
    seen = scored.post(
        "/v1/feedback",
        json={"decision_id": did, "offer_id": offer, "event": "viewed"},
        headers=auth["marketing"],
    )
    assert seen.status_code == 200, seen.text
    shadow = scored.post(
        "/v1/feedback",
        json={"decision_id": did + ".shadow", "offer_id": offer, "event": "viewed"},
        headers=auth["core"],
    )
    assert shadow.status_code == 409
    assert shadow.json()["error"]["code"] == "not_served"
    activated = scored.post(
        f"/v1/offers/{offer}/activate",
        json={"customer_id": customer, "decision_id": did},
        headers=auth["core"],
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["decision_id"] == did
    with Session(world_db) as s:
        events = s.execute(
            select(OfferEvent.event, OfferEvent.offer_id)
            .where(OfferEvent.decision_id == did)
            .order_by(OfferEvent.id)
        ).all()
    assert [tuple(e) for e in events] == [("viewed", offer), ("activated", offer)]


def test_greedy_takes_the_best_eligible_offer_for_certain(
    greedy: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    customer = generous(greedy, auth, world, 4)[2]
    answer = rank(greedy, auth, customer, channel="branch")
    assert answer["policy"] == "greedy"
    served = decision(world_db, answer["decision_id"])
    candidates = served.candidates or {}
    # channel "branch": offers limited to other channels are no candidates, nor informational ones (EV 0)
    assert set(candidates) <= {
        "MULT2_GROCERIES",
        "MULT3_RESTAURANTS",
        "BONUS300_ANY3K",
        "BONUS200_P2P1K",
        "CASHBACK300_PHARMACY2K",
        "CASHBACK1000_CLOTHING10K",
    }
    ev = expected_values(greedy, auth, [customer])
    assert all(ev[customer, o] > 0 for o in candidates)
    best = max(candidates, key=lambda o: ev[customer, o])
    assert answer["offers"][0]["offer_id"] == best
    assert answer["offers"][0]["probability"] == 1.0
    assert candidates[best][0] == 1.0
    with Session(world_db) as s:
        assert s.get(Decision, answer["decision_id"] + ".shadow") is None


def test_running_activations_tiers_and_new_offers_shape_the_candidates(
    greedy: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    customer = generous(greedy, auth, world, 4)[3]
    ev = expected_values(greedy, auth, [customer])
    best, second = sorted((o for (_, o), v in ev.items() if v > 0), key=lambda o: -ev[customer, o])[:2]
    r = greedy.post(f"/v1/offers/{best}/activate", json={"customer_id": customer}, headers=auth["core"])
    assert r.status_code == 200, r.text
    # two new offers just like the second best, one of them for gold members only
    original = next(
        o for o in greedy.get("/v1/offers", headers=auth["marketing"]).json() if o["offer_id"] == second
    )
    spec = {k: v for k, v in original.items() if k not in ("offer_id", "name")}
    for oid, tier in (("GOLD_COPY", "gold"), ("FRESH_COPY", None)):
        put = greedy.put(f"/v1/offers/{oid}", json={**spec, "min_tier": tier}, headers=auth["admin"])
        assert put.status_code == 200, put.text
    answer = rank(greedy, auth, customer)
    candidates = decision(world_db, answer["decision_id"]).candidates or {}
    worth = {o for (_, o), v in ev.items() if v > 0}
    # the running offer and the gold one are out; the new offer is scored from its attributes (no retraining)
    assert set(candidates) == (worth - {best}) | {"FRESH_COPY"}
    assert candidates["FRESH_COPY"][1] == pytest.approx(candidates[second][1])


def test_frequency_caps_end_in_an_empty_decision(
    greedy: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    ev = expected_values(greedy, auth, list(world.customers))

    def room(customer: str) -> bool:
        """Two offers worth sending in the app, and two more on the web after those."""
        good = sorted((o for o in OFFER_VALUE if ev[customer, o] > 0), key=lambda o: -ev[customer, o])
        app = [o for o in good if o not in WEB_ONLY][:2]
        return len(app) == 2 and len([o for o in good if o not in app and o not in APP_ONLY]) >= 2

    customer = next(c for c in world.customers if room(c))
    shown = [rank(greedy, auth, customer, channel="app")["offers"] for _ in range(3)]
    # two offers per channel within 30 days: the third ranking in the app shows nothing
    assert [len(s) for s in shown] == [1, 1, 0]
    assert shown[0][0]["offer_id"] != shown[1][0]["offer_id"]  # the same offer is never sent twice
    more = [rank(greedy, auth, customer, channel="web")["offers"] for _ in range(3)]
    # four offers per customer in all: two more on the web, then nothing anywhere
    assert [len(s) for s in more] == [1, 1, 0]
    empty = rank(greedy, auth, customer)
    assert empty["offers"] == []
    row = decision(world_db, empty["decision_id"])
    assert (row.offer_id, row.probability, row.offers) == (None, 1.0, [])


def test_a_campaign_targets_the_best_customers_within_budget_and_logs_them(
    scored: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    offer = "MULT5_TRAVEL"
    first = scored.post("/v1/campaigns", json={"offer_id": offer, "limit": 5}, headers=auth["marketing"])
    assert first.status_code == 200, first.text
    plan = first.json()
    assert plan["considered"] == len(world.customers)
    assert [c["rank"] for c in plan["customers"]] == [1, 2, 3, 4, 5]
    ev = [c["expected_value"] for c in plan["customers"]]
    assert ev == sorted(ev, reverse=True)
    ev_of = expected_values(scored, auth, [c["customer_id"] for c in plan["customers"]])
    assert all(
        c["expected_value"] == pytest.approx(ev_of[c["customer_id"], offer]) for c in plan["customers"]
    )
    assert all(c["expected_cost"] == pytest.approx(c["p_complete"] * 600) for c in plan["customers"])
    assert plan["expected_value"] == pytest.approx(sum(ev))
    with Session(world_db) as s:
        rows = s.scalars(select(Decision).where(Decision.policy == f"campaign:{plan['campaign_id']}")).all()
    assert {r.id for r in rows} == {c["decision_id"] for c in plan["customers"]}
    assert all(r.probability == 1.0 and r.offer_id == offer for r in rows)

    budget = 700.0  # more than any one customer's expected cost (p x 600): at least one fits
    second = scored.post(
        "/v1/campaigns", json={"offer_id": offer, "budget": budget}, headers=auth["marketing"]
    ).json()
    targeted = {c["customer_id"] for c in plan["customers"]}
    assert not targeted & {c["customer_id"] for c in second["customers"]}  # they already got it
    assert second["eligible"] == plan["eligible"] - 5
    assert second["customers"]
    assert second["expected_cost"] <= budget
    assert second["customers"][-1]["cumulative_cost"] == pytest.approx(second["expected_cost"])


def test_campaigns_refuse_unknown_and_withdrawn_offers(scored: TestClient, auth: Headers) -> None:
    r = scored.post("/v1/campaigns", json={"offer_id": "NOPE"}, headers=auth["marketing"])
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_offer")
    body = {"kind": "multiplier", "multiplier": 2, "duration_days": 7, "active": False}
    assert scored.put("/v1/offers/OLD", json=body, headers=auth["admin"]).status_code == 200
    r = scored.post("/v1/campaigns", json={"offer_id": "OLD"}, headers=auth["marketing"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "offer_inactive")


def test_the_shadow_report_scores_the_challenger_on_the_logged_decisions(
    scored: TestClient, world: World, auth: Headers
) -> None:
    customers = generous(scored, auth, world, 1)
    assert len(customers) >= 30
    answers = [rank(scored, auth, c) for c in customers[:30]]
    completed = [a for a in answers if a["offers"]][:10]
    for a in completed:
        body = {"decision_id": a["decision_id"], "offer_id": a["offers"][0]["offer_id"], "event": "completed"}
        assert scored.post("/v1/feedback", json=body, headers=auth["core"]).status_code == 200
    r = scored.get("/v1/admin/shadow", headers=auth["admin"])
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["champion"], report["challenger"]) == ("epsilon_greedy:0.05", "shadow:thompson:gaussian")
    assert report["decisions"] == 30
    assert 0.0 <= report["agreement_rate"] <= 1.0
    assert report["completed"] == 10
    margins = [OFFER_VALUE[a["offers"][0]["offer_id"]] for a in completed]
    assert report["logged_value"] == pytest.approx(sum(v - c for v, c in margins) / 30)
    assert set(report["estimates"]) == {"ips", "snips", "dr"}
    assert report["estimates"]["ips"]["n"] == 30
    assert scored.get("/v1/admin/shadow", headers=auth["marketing"]).status_code == 403


def test_a_promoted_challenger_serves_and_the_old_policy_shadows_it(
    world: World, world_db: Engine, auth: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mlflow_store(monkeypatch, world.mlflow_uri)
    app = scored_app(world_db, world, policy="thompson", shadow_policy="epsilon_greedy")
    with TestClient(app) as client:
        customer = generous(client, auth, world, 2)[0]
        answer = rank(client, auth, customer)
    assert answer["policy"] == "thompson:gaussian"
    served = decision(world_db, answer["decision_id"])
    assert (served.model_versions or {})["probability_method"] == "monte_carlo:1000"
    shadow = decision(world_db, answer["decision_id"] + ".shadow")
    assert shadow.policy == "shadow:epsilon_greedy:0.05"
