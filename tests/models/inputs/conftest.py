"""Shared material of the model-input tests: a small catalogue and plausible customer vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import CATEGORIES, FEATURE_NAMES

IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
CATALOGUE = pd.DataFrame(
    {
        "offer_id": ["GROC2X", "BONUS3K", "INFO", "SBX"],
        "kind": ["multiplier", "bonus_points", "informational", "cashback"],
        "multiplier": [2.0, 1.0, 1.0, 1.0],
        "bonus_points": [0, 300, 0, 0],
        "threshold": [None, 3000.0, None, 900.0],
        "categories": [["groceries"], None, None, None],
        "txn_types": [["purchase"], ["purchase"], None, None],
        "channels": [None, ["app", "web"], None, ["web", "social"]],
        "duration_days": [14, 7, 7, 10],
        "cost": [60.0, 300.0, 0.0, 450.0],
        "value": [150.0, 650.0, 0.0, 900.0],
        "attributes": [None, None, None, {"offer_type": "bogo", "reward": 5, "channels": ["web", "social"]}],
    }
)


def vectors(n: int = 6, seed: int = 0) -> np.ndarray:
    """Plausible customer vectors: integer counts where the catalogue has them, some missing values."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 50, (n, len(FEATURE_NAMES)))
    m[:, IDX["txn_count_365d"]] = rng.integers(0, 200, n)
    m[:, IDX["days_since_last_txn"]] = rng.uniform(0.5, 60, n)
    m[:, IDX["mean_gap_days_365d"]] = rng.uniform(0.5, 5, n)
    m[:, IDX["preferred_channel"]] = rng.integers(-1, 4, n)
    m[:, IDX["txn_amount_mean_365d"]] = rng.uniform(500, 4000, n)
    m[:, IDX["txn_amount_std_365d"]] = rng.uniform(100, 3000, n)
    shares = rng.dirichlet(np.ones(len(CATEGORIES)), n)
    for k, c in enumerate(CATEGORIES):
        m[:, IDX[f"category_{c}_share_365d"]] = shares[:, k]
    m[0, IDX["txn_count_365d"]] = 0  # never transacted in the year
    m[0, IDX["days_since_last_txn"]] = np.nan
    return m
