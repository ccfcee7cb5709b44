"""``loyalty serve`` on brand-new stores: set up once, before its workers, and usable afterwards.

Two workers setting up a new MLflow store at the same time break it for good (``table
_alembic_tmp_latest_metrics already exists``); a newcomer meets it at the first ``loyalty serve``. The
command sets up the ledger's schema and the MLflow store's in its own process first: this test runs the
real command, two real uvicorn workers on a free loopback port, against stores that do not exist yet.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving.conftest import API_KEYS, KEYS, NO_MULTIPLIER_RULE, free_port

START_TIMEOUT = 60.0  # two workers importing the service and MLflow share two cores with the other tests


def _tables(db: Path) -> set[str]:
    raw = sqlite3.connect(db)
    try:
        return {name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()


def test_serve_sets_up_new_stores_once_before_its_workers(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger" / "loyalty.db"
    store = tmp_path / "mlflow" / "mlflow.db"  # neither the file nor its folder exists yet
    port = free_port()
    env = {
        **os.environ,
        "LOYALTY_DATABASE_URL": f"sqlite:///{ledger}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{store}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "LOYALTY_API_KEYS": API_KEYS,
        "LOYALTY_MULTIPLIER_FILE": str(NO_MULTIPLIER_RULE),
        "LOYALTY_MODEL_POLL_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    loyalty = Path(sys.executable).with_name("loyalty")
    command = [str(loyalty), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        health = None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    health = client.get("/health", headers={"X-API-Key": KEYS["admin"]})
                    break
                except httpx.TransportError:
                    time.sleep(0.25)
            assert health is not None, f"no answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
            assert health.status_code == 200
            body = health.json()
            assert body["database"] == "ok"
            # No champion yet: degraded, for that reason only, never because the store itself failed.
            assert "no 'champion' version of model 'loyalty-churn'" in body["models"]["churn"]["error"]
            # Every worker answers the ledger (each is asked until both have been seen, or a few tries).
            for i in range(8):
                posted = client.post(
                    "/v1/transactions",
                    json={
                        "transaction_id": f"t-{i}",
                        "customer_id": "c-1",
                        "type": "purchase",
                        "amount": "10.00",
                        "occurred_at": "2026-05-01T10:00:00Z",
                    },
                    headers={"X-API-Key": KEYS["core"]},
                )
                assert posted.status_code == 200, posted.text
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
    output = log.read_text()
    assert "already exists" not in output, output[-3000:]
    assert not any(name.startswith("_alembic_tmp") for name in _tables(store)), _tables(store)
    from mlflow import MlflowClient

    client_ = MlflowClient(tracking_uri=f"sqlite:///{store}", registry_uri=f"sqlite:///{store}")
    assert client_.search_registered_models() == []
    assert client_.search_experiments()  # the Default experiment: the tracking half is set up too
    assert {"alembic_version", "entries", "members"} <= _tables(ledger)
