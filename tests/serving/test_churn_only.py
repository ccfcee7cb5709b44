"""A bank that only has transactions: a churn champion and nothing else (issue 18).

``loyalty score`` writes churn without offer columns and says so; the service starts, answers ``/v1/score``
with churn alone, refuses the offer routes with a 503 that says why, and ``/health`` is ``ok`` and shows
the churn model served and the offer side absent.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loyalty_core import Settings
from serving.app import create_app
from serving.cli import app as cli
from tests.serving.conftest import API_KEYS, KEYS, ChurnOnlyWorld, churn_only_env

OFFER_COLUMNS = ("offer_1", "offer_1_propensity", "offer_1_uplift", "offer_1_expected_value")


@pytest.fixture
def churn_only_db(churn_only_world: ChurnOnlyWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own copy of the ledger, and the environment the README's commands run in."""
    db = tmp_path / "loyalty.db"
    shutil.copyfile(churn_only_world.db, db)
    churn_only_env(monkeypatch, churn_only_world, db)
    monkeypatch.setenv("LOYALTY_MULTIPLIER_FILE", str(tmp_path / "multiplier.json"))
    return db


def test_loyalty_score_writes_churn_without_offer_columns_and_says_so(
    churn_only_world: ChurnOnlyWorld, churn_only_db: Path, tmp_path: Path
) -> None:
    """The README's ``loyalty score`` line, its output checked against the README's comments."""
    args = list(churn_only_world.score_args)
    at = args.index("--out") + 1
    out = tmp_path / Path(args[at]).name  # the README's file name, in this test's folder
    args[at] = str(out)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "(churn only)" in result.output
    assert "no offer champion: churn only" in result.output
    assert "loyalty-offer-propensity" not in result.output
    says = [line for line in churn_only_world.readme_says if not line.startswith("scored ")]
    assert says, "the README's block should show what `loyalty score` prints"
    assert all(line in result.output for line in says), (says, result.output)
    frame = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["customer_id", "churn_probability", "bonus_multiplier", "churn_reasons"]
    assert not set(OFFER_COLUMNS) & set(frame.columns)
    assert set(frame["customer_id"]) == set(churn_only_world.customers)
    assert frame["churn_probability"].between(0, 1).all()
    assert frame["churn_probability"].nunique() > 10  # scored, not a constant
    assert (tmp_path / "multiplier.json").exists()  # the service's multiplier rule, churn alone
    parquet = tmp_path / "scores.parquet"
    assert CliRunner().invoke(cli, [*args[:at], str(parquet), *args[at + 1 :]]).exit_code == 0
    assert list(pd.read_parquet(parquet).columns) == list(frame.columns)
    meta = json.loads(pq.read_schema(parquet).metadata[b"loyalty.scores"])
    assert meta["offers_absent"].startswith("no offer champion")
    assert list(meta["models"]) == ["loyalty-churn"]


@pytest.fixture
def churn_only_client(
    churn_only_world: ChurnOnlyWorld, churn_only_db: Path, tmp_path: Path
) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{churn_only_db}",
        api_keys=API_KEYS,
        model_poll_seconds=0,
        multiplier_file=tmp_path / "multiplier.json",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_service_scores_churn_alone_and_says_offers_are_absent(
    churn_only_world: ChurnOnlyWorld, churn_only_client: TestClient
) -> None:
    ids = [*churn_only_world.customers[:3], "a-newcomer"]
    r = churn_only_client.post("/v1/score", json={"customer_ids": ids}, headers={"X-API-Key": KEYS["core"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["customer_id"] for s in body["scores"]] == ids
    assert all(0 <= s["churn_probability"] <= 1 and s["offers"] == [] for s in body["scores"])
    assert [s["known"] for s in body["scores"]] == [True, True, True, False]
    assert body["offers_absent"].startswith("no offer champion")
    assert set(body["model_versions"]) == {"churn", "features", "multiplier"}


def test_offer_routes_answer_503_with_the_reason(churn_only_client: TestClient) -> None:
    marketing = {"X-API-Key": KEYS["marketing"]}
    for path, body in (("/v1/offers/rank", {"customer_id": "c-1"}), ("/v1/campaigns", {"offer_id": "o-1"})):
        r = churn_only_client.post(path, json=body, headers=marketing)
        assert r.status_code == 503, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "model_unavailable"
        assert "no offer champion" in error["message"]
    assert churn_only_client.get("/v1/offers", headers=marketing).json() == []


def test_health_is_ok_and_shows_churn_served_and_offers_absent(churn_only_client: TestClient) -> None:
    health = churn_only_client.get("/health").json()  # anonymous: reasons of absence are fixed sentences
    assert (health["status"], health["database"]) == ("ok", "ok")
    assert health["serves"] == ["churn"]
    models = health["models"]
    assert (models["churn"]["status"], models["churn"]["version"]) == ("ok", "1")
    assert models["features"]["status"] == "ok"
    assert models["multiplier"]["status"] == "ok"
    for slot, words in (
        ("offers", "no offer champion"),
        ("catalogue", "no offers catalogue"),
        ("uplift", "no uplift champion"),
    ):
        assert (models[slot]["status"], models[slot]["version"]) == ("absent", None), slot
        assert models[slot]["error"].startswith(words)
    reloaded = churn_only_client.post("/v1/admin/models/reload", headers={"X-API-Key": KEYS["admin"]})
    assert reloaded.json()["status"] == "ok"
    assert reloaded.json()["models"]["offers"]["status"] == "absent"
