"""Model reloads: under load no request is lost or mixes versions; polling follows the alias; broken models
degrade the service instead of crashing it, and a failed reload keeps the previous version serving."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from models import CHAMPION, ChurnInputs, load_champion, load_scorer
from pipelines import FEATURE_NAMES, OnlineFeatures
from tests.serving.conftest import KEYS, ThreadedServer, World, scored_app

CHURN = "loyalty-churn"
CORE = {"X-API-Key": KEYS["core"]}
ADMIN = {"X-API-Key": KEYS["admin"]}


def client_for(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register_variant(
    uri: str, tmp: Path, *, calibrator: dict[str, Any] | None = None, broken: bool = False
) -> str:
    """A new version of the churn model: the champion with another calibrator, or a corrupt file."""
    champion = load_champion(CHURN, tracking_uri=uri)
    folder = tmp / f"variant-{time.monotonic_ns()}"
    champion.scorer.save(folder)
    if calibrator is not None:
        meta = json.loads((folder / "scorer.json").read_text())
        meta["calibrator"] = calibrator
        (folder / "scorer.json").write_text(json.dumps(meta))
    if broken:  # every kind of churn scorer (trees, BG/NBD, a stack) has its meta file
        (folder / "scorer.json").write_text("{not a model")
    version = client_for(uri).create_model_version(CHURN, source=str(folder), run_id=champion.run_id)
    return str(version.version)


def move_alias(uri: str, version: str) -> None:
    client_for(uri).set_registered_model_alias(CHURN, CHAMPION, version)


def churn_of(uri: str, version: str, rows: np.ndarray) -> np.ndarray:
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(artifact_uri=f"models:/{CHURN}/{version}", tracking_uri=uri))
    found = next(local.rglob("scorer.json")).parent
    scorer = load_scorer(found)
    return scorer.predict_proba(ChurnInputs.for_scorer(scorer, FEATURE_NAMES).matrix(rows))


@pytest.fixture
def registry(mlflow_copy: str) -> str:
    return mlflow_copy


@pytest.mark.slow
def test_reload_under_load_loses_no_request_and_never_mixes_versions(
    world: World, world_db: Engine, registry: str, tmp_path: Path
) -> None:
    customers = list(world.customers[:8])
    rows, _ = OnlineFeatures(world_db).load().get_many(customers)
    v2 = register_variant(registry, tmp_path, calibrator={"method": "sigmoid", "a": 0.6, "b": 0.4})
    expected = {"1": churn_of(registry, "1", rows), v2: churn_of(registry, v2, rows)}
    assert not np.allclose(expected["1"], expected[v2]), "the two versions must be told apart by their scores"
    results: list[tuple[int, dict[str, Any] | str]] = []
    stop = threading.Event()

    def hammer(base: str, worker: int) -> None:
        with httpx.Client(base_url=base, headers=CORE, timeout=30) as http:
            i = worker
            while not stop.is_set():
                r = http.post("/v1/score", json={"customer_ids": [customers[i % len(customers)]]})
                results.append((r.status_code, r.json() if r.status_code == 200 else r.text))
                i += 1

    with ThreadedServer(scored_app(world_db, world)) as base:
        threads = [threading.Thread(target=hammer, args=(base, w)) for w in range(4)]
        for t in threads:
            t.start()
        try:
            with httpx.Client(base_url=base, headers=ADMIN, timeout=60) as admin:
                for version in (v2, "1", v2):
                    time.sleep(0.4)
                    move_alias(registry, version)
                    reloaded = admin.post("/v1/admin/models/reload")
                    assert reloaded.status_code == 200, reloaded.text
                    assert reloaded.json()["models"]["churn"]["version"] == version
                time.sleep(0.4)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert len(results) > 50
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    seen = set()
    for _, body in results:
        assert isinstance(body, dict)
        version = body["model_versions"]["churn"]
        seen.add(version)
        score = body["scores"][0]
        i = customers.index(score["customer_id"])
        assert score["churn_probability"] == pytest.approx(expected[version][i], rel=1e-12)
    assert seen == {"1", v2}


def test_polling_follows_the_alias_without_an_admin_call(
    world: World, world_db: Engine, registry: str, tmp_path: Path
) -> None:
    v2 = register_variant(registry, tmp_path, calibrator={"method": "sigmoid", "a": 0.9, "b": 0.1})
    with TestClient(scored_app(world_db, world, model_poll_seconds=0.1)) as client:
        assert client.get("/health").json()["models"]["churn"]["version"] == "1"
        move_alias(registry, v2)
        deadline = time.monotonic() + 20
        while client.get("/health").json()["models"]["churn"]["version"] != v2:
            assert time.monotonic() < deadline, "the poll never picked up the new champion"
            time.sleep(0.1)
        r = client.post("/v1/score", json={"customer_ids": [world.customers[0]]}, headers=CORE)
        assert r.json()["model_versions"]["churn"] == v2


@pytest.fixture
def broken_champion(registry: str, tmp_path: Path) -> str:
    version = register_variant(registry, tmp_path, broken=True)
    move_alias(registry, version)
    return version


def test_a_broken_champion_degrades_the_service_and_the_rest_keeps_working(
    world: World, world_db: Engine, registry: str, broken_champion: str
) -> None:
    with TestClient(scored_app(world_db, world)) as client:
        health = client.get("/health", headers={"X-API-Key": "test-admin-key"}).json()
        assert health["status"] == "degraded"
        churn = health["models"]["churn"]
        assert (churn["status"], churn["version"]) == ("degraded", None)
        assert f"version {broken_champion} (champion) is broken" in churn["error"]
        r = client.post("/v1/score", json={"customer_ids": [world.customers[0]]}, headers=CORE)
        assert r.status_code == 503
        assert "churn model is not available" in r.json()["error"]["message"]
        # ranking needs only the offer model
        rank = client.post(
            "/v1/offers/rank",
            json={"customer_id": world.customers[0]},
            headers={"X-API-Key": KEYS["marketing"]},
        )
        assert rank.status_code == 200, rank.text
        move_alias(registry, "1")
        reloaded = client.post("/v1/admin/models/reload", headers=ADMIN).json()
        assert reloaded["status"] == "ok"
        assert (
            client.post("/v1/score", json={"customer_ids": [world.customers[0]]}, headers=CORE).status_code
            == 200
        )


def test_a_failed_reload_keeps_the_previous_version_serving(
    world: World, world_db: Engine, registry: str, tmp_path: Path
) -> None:
    with TestClient(scored_app(world_db, world)) as client:
        broken = register_variant(registry, tmp_path, broken=True)
        move_alias(registry, broken)
        reloaded = client.post("/v1/admin/models/reload", headers=ADMIN).json()
        assert reloaded["status"] == "degraded"
        churn = reloaded["models"]["churn"]
        assert (churn["status"], churn["version"]) == ("degraded", "1")
        assert "is broken" in churn["error"]
        r = client.post("/v1/score", json={"customer_ids": [world.customers[0]]}, headers=CORE)
        assert r.status_code == 200
        assert r.json()["model_versions"]["churn"] == "1"
