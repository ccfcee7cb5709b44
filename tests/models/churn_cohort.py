"""A single simulated cohort (BG/NBD's own story) as the churn job's frame, for the candidates' tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.estimators.bgnbd import simulate_bgnbd
from models.estimators.training import train
from models.inputs import BgnbdParams, bgnbd_history
from models.jobs.churn_steps import ChurnResult, churn_result, fit_bgnbd

NAMES = ("txn_count_365d", "days_since_last_txn", "mean_gap_days_365d", "txn_count_90d", "noise")
TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}  # CDNOW-like, in weeks
HORIZON_DAYS = 91
START = pd.Timestamp("1997-01-01", tz="UTC")


def cohort_cutoff(k: int, n: int, seed: int, *, weeks: float) -> pd.DataFrame:
    """One cutoff of a single cohort: every customer's (frequency, recency, T) after ``weeks`` of age (plus
    their acquisition spread over 12 weeks), as the feature vector shows it, and ``churned`` = no purchase
    in the next ``HORIZON_DAYS``."""
    rng = np.random.default_rng(seed + 1000 * k)
    age = weeks + rng.uniform(0, 12, n)
    sim = simulate_bgnbd(n, age, TRUE, seed + k, holdout=HORIZON_DAYS / 7)
    x, tx, t = sim["frequency"].to_numpy(), sim["recency"].to_numpy(), sim["T"].to_numpy()
    last = (t - tx) * 7
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": START + pd.Timedelta(days=int(weeks * 7)),
            "txn_count_365d": x + 1,
            "days_since_last_txn": last,
            "mean_gap_days_365d": np.where(x > 0, tx * 7 / np.maximum(x, 1), np.nan),
            "txn_count_90d": (last < 90).astype(np.int64) + np.minimum(x, 3) * (last < 60),
            "noise": rng.normal(size=n),
            "churned": (sim["frequency_holdout"].to_numpy() == 0).astype(np.int8),
        }
    )


def cohort(n: int = 1500, seed: int = 0, cutoffs: int = 5) -> pd.DataFrame:
    """Weekly cutoffs of one cohort, the last a purged validation (its labels start after the others')."""
    weeks = [8.0 + k for k in range(cutoffs - 1)] + [8.0 + cutoffs - 2 + HORIZON_DAYS / 7]
    return pd.concat([cohort_cutoff(k, n, seed, weeks=w) for k, w in enumerate(weeks)], ignore_index=True)


def per_cutoff(frame: pd.DataFrame) -> dict[pd.Timestamp, BgnbdParams]:
    out = {}
    for stamp, rows in frame.groupby("as_of"):
        matrix = rows[list(NAMES)].to_numpy(np.float64)
        out[pd.Timestamp(stamp)] = fit_bgnbd(bgnbd_history(matrix, NAMES), HORIZON_DAYS)
    return out


def fitted(frame: pd.DataFrame) -> tuple[ChurnResult, dict[pd.Timestamp, BgnbdParams]]:
    result = train(frame, "churn", features=list(NAMES), params={"max_rounds": 40, "n_jobs": 1})
    params = per_cutoff(frame)
    last = max(params)
    classic = {"params": np.array([params[last].r, params[last].alpha, params[last].a, params[last].b])}
    return churn_result(result, params, classic, last, HORIZON_DAYS), params
