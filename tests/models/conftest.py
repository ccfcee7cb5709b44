"""Synthetic training frames with a known logistic ground truth, and a throw-away MLflow store per test.

The frames have the shape the pipelines produce (``customer_id`` + ``as_of`` keys, numeric features, a 0/1
label; offers add ``offer_id`` and ``offer_*`` attributes), small enough that a model trains in a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow

CUTOFF_START = pd.Timestamp("2026-01-31", tz="UTC")


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def churn_frame(
    n_customers: int = 1500, n_cutoffs: int = 4, *, seed: int = 0, drift: float = 0.35, signal: float = 1.0
) -> pd.DataFrame:
    """Customers x monthly cutoffs. Churn risk rises with recency, falls with frequency and spend trend,
    is higher for new members; the base rate drifts up over time (so calibration on a later cutoff matters).
    ``signal=0`` gives labels independent of the features."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:07d}" for i in range(n_customers)])
    activity = rng.lognormal(0.0, 0.6, n_customers)  # latent transactions per 3 days
    tenure0 = rng.uniform(30, 1500, n_customers)
    frames = []
    for c in range(n_cutoffs):
        as_of = CUTOFF_START + pd.DateOffset(months=c)
        txn_count = rng.poisson(activity * 30)
        recency = rng.exponential(6.0 / activity) + rng.uniform(0, 2, n_customers)
        spend_trend = rng.normal(0, 1, n_customers)
        spend_trend[rng.random(n_customers) < 0.05] = np.nan
        tenure = tenure0 + 30 * c
        balance = rng.lognormal(6, 1, n_customers)
        trend_filled = np.nan_to_num(spend_trend, nan=-1.0)
        logit = (
            -1.4
            + drift * c
            + signal
            * (
                0.06 * (recency - 6)
                - 0.05 * (txn_count - 30)
                - 0.8 * trend_filled
                + 0.7 * (tenure < 180)
                + 0.4 * trend_filled * (recency > 10)
            )
        )
        churned = (rng.random(n_customers) < sigmoid(logit)).astype(np.int8)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "as_of": as_of,
                    "days_since_last_txn": recency,
                    "txn_count_90d": txn_count.astype(np.int64),
                    "spend_trend_30d": spend_trend,
                    "tenure_days": tenure,
                    "points_balance": balance,
                    "noise_a": rng.normal(size=n_customers),
                    "noise_b": rng.uniform(size=n_customers),
                    "churned": churned,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


OFFERS = pd.DataFrame(
    {
        "offer_id": [f"O{i:02d}" for i in range(9)],
        "offer_bonus_points": [0, 200, 500, 1000, 0, 0, 300, 800, 600],
        "offer_multiplier": [2.0, 1.0, 1.0, 1.0, 3.0, 1.5, 1.0, 1.0, 1.0],
        "offer_threshold": [0.0, 1000, 3000, 5000, 0, 0, 2000, 4000, 1500],
        "offer_duration_days": [14, 7, 14, 30, 7, 30, 14, 30, 21],
    }
)


def offer_frame(
    n_customers: int = 1200, n_cutoffs: int = 3, *, seed: int = 1, per_customer: int = 3
) -> pd.DataFrame:
    """Customers x offers sent at random. Response rises with activity and the offer's generosity, falls with
    its threshold unless the customer spends a lot: the interaction a per-offer rate cannot see."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:07d}" for i in range(n_customers)])
    activity = rng.normal(0, 1, n_customers)
    big_spender = rng.normal(0, 1, n_customers)
    mult_sensitive = rng.normal(0, 1, n_customers)
    frames = []
    for c in range(n_cutoffs):
        as_of = CUTOFF_START + pd.DateOffset(months=c)
        cust = np.repeat(np.arange(n_customers), per_customer)
        offer_idx = np.concatenate(
            [rng.choice(len(OFFERS), per_customer, replace=False) for _ in range(n_customers)]
        )
        o = OFFERS.iloc[offer_idx].reset_index(drop=True)
        logit = (
            -1.6
            + 0.8 * activity[cust]
            + 0.0015 * o["offer_bonus_points"].to_numpy()
            + 0.6 * (o["offer_multiplier"].to_numpy() - 1) * mult_sensitive[cust]
            - 0.0004 * o["offer_threshold"].to_numpy() * (1 - big_spender[cust])
            + 0.02 * o["offer_duration_days"].to_numpy()
        )
        frame = pd.DataFrame(
            {
                "customer_id": ids[cust],
                "offer_id": o["offer_id"].to_numpy(),
                "as_of": as_of,
                "txn_count_90d": rng.poisson(np.exp(3 + 0.4 * activity[cust])).astype(np.int64),
                "spend_90d": np.exp(9 + 0.5 * big_spender[cust] + rng.normal(0, 0.2, len(cust))),
                "multiplier_offers_completed": rng.poisson(np.exp(0.5 * mult_sensitive[cust])).astype(
                    np.int64
                ),
                "noise_a": rng.normal(size=len(cust)),
            }
        )
        for col in OFFERS.columns[1:]:
            frame[col] = o[col].to_numpy()
        frame["completed"] = (rng.random(len(cust)) < sigmoid(logit)).astype(np.int8)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def churn() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture
def offers() -> pd.DataFrame:
    return offer_frame()


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite tracking store + registry (artifacts beside it) for this test only."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    yield uri
    # log_training points MLflow's process-wide URIs at the store; forget them before monkeypatch restores
    # the environment, so the next test starts from its own.
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
