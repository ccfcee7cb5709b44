"""Metrics for a binary score on a holdout, the same for the model, its baseline and the champion.

Metric names are the ones logged to MLflow (prefixed ``val_`` / ``baseline_val_`` by the caller):

- ``roc_auc``: ranking quality over all thresholds;
- ``pr_auc``: average precision, more telling than ROC AUC when positives are rare (offer responses);
- ``log_loss`` and ``brier``: how good the probabilities are as probabilities (calibration + sharpness),
  which the expected-value policy multiplies by money;
- ``lift_at_10pct``: the positive rate among the top 10 % by score over the overall rate; what a campaign
  targeting a tenth of the base gains over picking at random.

The plots of the same scores are in ``models.evaluation.plots``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.inputs.frames import check_binary

METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "brier", "lift_at_10pct")
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "log_loss": False, "brier": False, "lift_at_10pct": True}
EPS = 1e-15


def lift_at(y: np.ndarray, score: np.ndarray, fraction: float = 0.1) -> float:
    """Positive rate in the top ``fraction`` by score over the overall positive rate.

    Ties at the cut are shared out pro rata (every row of the tied block counts with the same weight), so
    the figure does not depend on the order rows happened to be in.
    """
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    n = len(y)
    base = y.mean() if n else 0.0
    if n == 0 or base == 0.0:
        return math.nan
    k = max(1, math.ceil(fraction * n))
    threshold = np.sort(score)[::-1][k - 1]
    above = score > threshold
    tied = score == threshold
    take_tied = k - int(above.sum())
    positives = y[above].sum() + y[tied].mean() * take_tied
    return float(positives / k / base)


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The five holdout metrics of ``METRICS`` for probabilities ``proba`` of labels ``y``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    target = check_binary(y)
    p = np.asarray(proba, dtype=np.float64)
    if p.shape != target.shape:
        raise InvalidInput(f"{len(p)} scores for {len(target)} labels")
    if len(np.unique(target)) < 2:
        raise InvalidInput("the holdout has only one label class: ROC AUC and lift are undefined")
    clipped = np.clip(p, EPS, 1 - EPS)
    log_loss = -np.mean(target * np.log(clipped) + (1 - target) * np.log1p(-clipped))
    return {
        "roc_auc": float(roc_auc_score(target, p)),
        "pr_auc": float(average_precision_score(target, p)),
        "log_loss": float(log_loss),
        "brier": float(np.mean((p - target) ** 2)),
        "lift_at_10pct": lift_at(target, p, 0.1),
    }


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def is_better(metric: str, new: float, old: float, min_delta: float = 0.0) -> bool:
    """Whether ``new`` beats ``old`` on ``metric`` (a name of ``METRICS``, with or without a prefix)."""
    base = metric.rsplit("val_", 1)[-1]
    if base not in HIGHER_IS_BETTER:
        raise InvalidInput(f"unknown metric {metric!r}; one of {', '.join(METRICS)}", field="metric")
    if math.isnan(new):
        return False
    if math.isnan(old):
        return True
    return new > old + min_delta if HIGHER_IS_BETTER[base] else new < old - min_delta


def gains(y: np.ndarray, score: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of positives captured when targeting the top x share by score (the gains curve)."""
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order])]) / max(y.sum(), 1.0)
    share = np.linspace(0, 1, len(y) + 1)
    grid = np.linspace(0, 1, points)
    return grid, np.interp(grid, share, captured)


def gap_to_truth(
    rows: pd.DataFrame, y: np.ndarray, proba: np.ndarray, truth: pd.DataFrame, p_true: str
) -> dict[str, float]:
    """How much ranking is left to win: ROC AUC of the simulator's true probability (column ``p_true`` of
    ``truth``, keyed by its other columns) on the holdout ``rows`` it covers, and the model's ROC AUC on
    exactly those rows. The model's AUC is recomputed there, not taken from ``val_roc_auc``, so the gap
    compares like with like even when the truth leaves some rows out."""
    keys = [c for c in truth.columns if c != p_true]
    left = pd.DataFrame({k: rows[k].astype("str").to_numpy() for k in keys})
    left["row"] = np.arange(len(left))
    right = truth.assign(**{k: truth[k].astype("str") for k in keys})
    matched = left.merge(right, on=keys, how="inner", validate="m:1")
    at = matched["row"].to_numpy()
    if len(at) < 10 or len(np.unique(y[at])) < 2:
        raise InvalidInput(
            f"the truth matches {len(at)} holdout rows with {len(np.unique(y[at]))} label class(es): it does "
            "not describe this ledger",
            field="truth",
        )
    truth_auc = classification_metrics(y[at], matched[p_true].to_numpy(dtype=np.float64))["roc_auc"]
    model_auc = classification_metrics(y[at], proba[at])["roc_auc"]
    return {
        "val_roc_auc_truth": truth_auc,
        "val_roc_auc_model_on_truth_rows": model_auc,
        "val_roc_auc_gap_to_truth": truth_auc - model_auc,
        "val_truth_rows": float(len(at)),
    }
