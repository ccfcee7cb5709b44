"""POST /v1/score on a simulated bank with real champions; what happens without them; /health."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loyalty_core import DEFAULT_RULES, load_rules
from models import ChurnInputs, OfferInputs, load_champion, read_catalogue
from pipelines import FEATURE_NAMES, OnlineFeatures
from tests.serving.conftest import World

Headers = dict[str, dict[str, str]]
RULES = load_rules(DEFAULT_RULES)


def expected_scores(engine: Engine, world: World, ids: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """What the champions say, computed here without the service: churn per id, propensity per offer."""
    online = OnlineFeatures(engine).load()
    rows, _ = online.get_many(ids)
    churn = load_champion("loyalty-churn", tracking_uri=world.mlflow_uri).scorer
    offers = load_champion("loyalty-offer-propensity", tracking_uri=world.mlflow_uri).scorer
    catalogue = read_catalogue(engine)
    active = catalogue[catalogue["active"] & (catalogue["kind"] != "informational")]["offer_id"].tolist()
    inputs = OfferInputs.for_scorer(offers, catalogue, FEATURE_NAMES)
    p = offers.predict_proba(inputs.matrix(rows, active)).reshape(len(ids), len(active))
    return (
        churn.predict_proba(ChurnInputs.for_scorer(churn, FEATURE_NAMES).matrix(rows)),
        {oid: p[:, j] for j, oid in enumerate(active)},
    )


def test_scores_are_the_champions_on_the_online_features(
    scored: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    ids = [*world.customers[:3], "NEW-MEMBER"]
    r = scored.post("/v1/score", json={"customer_ids": ids}, headers=auth["core"])
    assert r.status_code == 200, r.text
    body = r.json()
    versions = body["model_versions"]
    assert set(versions) == {"churn", "offers", "uplift", "features", "catalogue", "multiplier"}
    assert (versions["churn"], versions["offers"], versions["uplift"]) == ("1", "1", "1")
    churn, propensity = expected_scores(world_db, world, ids)
    assert [s["customer_id"] for s in body["scores"]] == ids
    for i, s in enumerate(body["scores"]):
        assert s["churn_probability"] == pytest.approx(churn[i], rel=1e-9)
        got = {o["offer_id"]: o["propensity"] for o in s["offers"]}
        assert got == pytest.approx({oid: float(p[i]) for oid, p in propensity.items()}, rel=1e-9)
        assert [o["propensity"] for o in s["offers"]] == sorted(got.values(), reverse=True)
        assert s["bonus_multiplier"] >= 1.0
    assert [s["known"] for s in body["scores"]] == [True, True, True, False]
    assert body["scores"][0]["features_as_of"].startswith(world.as_of.date().isoformat())
    assert body["scores"][3]["features_as_of"] is None


def test_a_large_batch_scores_like_single_requests(scored: TestClient, world: World, auth: Headers) -> None:
    ids = list(world.customers[:40])
    batch = scored.post("/v1/score", json={"customer_ids": ids}, headers=auth["core"]).json()["scores"]
    for one, cid in zip(batch, ids, strict=True):
        single = scored.post("/v1/score", json={"customer_ids": [cid]}, headers=auth["core"]).json()
        alone = single["scores"][0]
        # the same numbers up to rounding (pair features of a batch go through a matrix product)
        assert alone["churn_probability"] == pytest.approx(one["churn_probability"], rel=1e-9)
        assert alone["bonus_multiplier"] == one["bonus_multiplier"]
        got = {o["offer_id"]: o["propensity"] for o in alone["offers"]}
        assert got == pytest.approx({o["offer_id"]: o["propensity"] for o in one["offers"]}, rel=1e-9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_ids": []}, "customer_ids"),
        ({"customer_ids": ["c"] * 1001}, "customer_ids"),
        ({"customer_ids": [7]}, "customer_ids.0"),
        ({"customer_ids": ["c"], "extra": 1}, "extra"),
    ],
)
def test_score_refuses_bad_bodies_naming_the_field(
    scored: TestClient, auth: Headers, body: dict[str, object], field: str
) -> None:
    r = scored.post("/v1/score", json=body, headers=auth["core"])
    assert r.status_code == 422, r.text
    assert field in {d["field"] for d in r.json()["error"]["details"]}


def test_health_lists_every_version_when_all_is_loaded(scored: TestClient) -> None:
    health = scored.get("/health").json()
    assert health["status"] == "ok"
    assert {k: v["status"] for k, v in health["models"].items()} == {
        "churn": "ok",
        "offers": "ok",
        "uplift": "ok",
        "features": "ok",
        "catalogue": "ok",
        "multiplier": "ok",
    }
    assert health["models"]["churn"]["version"] == "1"


def test_without_models_scoring_is_503_with_the_reason_and_the_ledger_works(
    client: TestClient, auth: Headers
) -> None:
    for path, body, key in (
        ("/v1/score", {"customer_ids": ["c-1"]}, "core"),
        ("/v1/offers/rank", {"customer_id": "c-1"}, "marketing"),
        ("/v1/campaigns", {"offer_id": "o-1"}, "marketing"),
    ):
        r = client.post(path, json=body, headers=auth[key])
        assert r.status_code == 503, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "model_unavailable"
        assert "is not available" in error["message"]
    posted = client.post(
        "/v1/transactions",
        json={
            "transaction_id": "t-1",
            "customer_id": "c-1",
            "type": "purchase",
            "amount": "1500.00",
            "occurred_at": "2026-05-01T10:00:00Z",
        },
        headers=auth["core"],
    )
    assert posted.status_code == 200, posted.text
    health = client.get("/health", headers=auth["admin"]).json()  # details: admin only
    assert health["status"] == "degraded"
    assert health["database"] == "ok"
    assert "no 'champion' version of model 'loyalty-churn'" in health["models"]["churn"]["error"]
    assert "online feature table holds no customer" in health["models"]["features"]["error"]
    assert health["models"]["uplift"]["status"] == "absent"  # optional: not a reason to be degraded
    assert (health["models"]["multiplier"]["status"], health["models"]["multiplier"]["version"]) == (
        "ok",
        "default",
    )


def test_uplift_is_the_difference_of_the_uplift_champions_two_models(
    scored: TestClient, world: World, world_db: Engine, auth: Headers
) -> None:
    from models import load_uplift

    ids = list(world.customers[:5])
    body = scored.post("/v1/score", json={"customer_ids": ids}, headers=auth["core"]).json()
    uplift = load_uplift(tracking_uri=world.mlflow_uri)
    online = OnlineFeatures(world_db).load()
    rows, _ = online.get_many(ids)
    catalogue = read_catalogue(world_db)
    inputs = OfferInputs(FEATURE_NAMES, catalogue, columns=uplift.features)
    for i, s in enumerate(body["scores"]):
        offers = [o["offer_id"] for o in s["offers"]]
        want = np.clip(uplift.predict(inputs.matrix(rows[i : i + 1], offers)), -1, 1)
        assert [o["uplift"] for o in s["offers"]] == pytest.approx(want.tolist(), rel=1e-9)


def test_multipliers_follow_the_batch_runs_budget(scored: TestClient, world: World, auth: Headers) -> None:
    """The service applies the shadow price of ``loyalty score``'s allocation to each customer: a customer
    of that batch gets the batch's multiplier (at most it, when their step tied with the budget's last)."""
    import pandas as pd

    batch = pd.read_parquet(world.scores).set_index("customer_id")["bonus_multiplier"]
    ids = list(world.customers)
    body = scored.post("/v1/score", json={"customer_ids": ids}, headers=auth["core"]).json()
    online = {s["customer_id"]: s["bonus_multiplier"] for s in body["scores"]}
    assert set(batch.unique()) != {1.0}, "the world's budget should grant some multipliers"
    assert all(online[c] <= batch[c] for c in ids)
    assert sum(online[c] == batch[c] for c in ids) >= 0.95 * len(ids)
