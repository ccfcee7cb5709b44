"""Metrics and plots for a binary score on a holdout, the same for the model, its baseline and the champion.

Metric names are the ones logged to MLflow (prefixed ``val_`` / ``baseline_val_`` by the caller):

- ``roc_auc``: ranking quality over all thresholds;
- ``pr_auc``: average precision, more telling than ROC AUC when positives are rare (offer responses);
- ``log_loss`` and ``brier``: how good the probabilities are as probabilities (calibration + sharpness),
  which the expected-value policy multiplies by money;
- ``lift_at_10pct``: the positive rate among the top 10 % by score over the overall rate; what a campaign
  targeting a tenth of the base gains over picking at random.

Plots are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas renders them); no pyplot state,
so they are safe in threads and do not touch an interactive backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.frames import check_binary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


# --- plots ------------------------------------------------------------------------------------------------
def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_calibration(y: np.ndarray, scores: Mapping[str, np.ndarray], n_bins: int = 10) -> Figure:
    """Reliability diagram: mean predicted probability vs observed rate per quantile bin, a line per score."""
    from sklearn.calibration import calibration_curve

    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, p in scores.items():
        observed, predicted = calibration_curve(y, np.clip(p, 0, 1), n_bins=n_bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", label=name)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title("Calibration on the holdout")
    ax.legend(loc="upper left")
    return fig


def plot_gains(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """Gains (share of positives captured) and lift by share targeted, for each score and at random."""
    fig = _figure(10.0, 4.5)
    ax_gain, ax_lift = fig.subplots(1, 2)
    ax_gain.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax_lift.axhline(1.0, linestyle="--", color="grey", label="random")
    for name, p in scores.items():
        share, captured = gains(y, p)
        ax_gain.plot(share, captured, label=name)
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(share > 0, captured / share, np.nan)
        ax_lift.plot(share[5:], lift[5:], label=name)
    ax_gain.set_xlabel("share of customers targeted (by score)")
    ax_gain.set_ylabel("share of positives captured")
    ax_gain.set_title("Cumulative gains")
    ax_lift.set_xlabel("share of customers targeted (by score)")
    ax_lift.set_ylabel("lift over random")
    ax_lift.set_title("Lift")
    ax_gain.legend(loc="lower right")
    return fig


def plot_importance(features: Sequence[str], gain: np.ndarray, top: int = 20) -> Figure:
    """Total split gain per feature, the largest ``top``."""
    gain = np.asarray(gain, dtype=np.float64)
    order = np.argsort(-gain)[:top][::-1]
    fig = _figure(7.0, max(3.0, 0.3 * len(order) + 1))
    ax = fig.add_subplot()
    ax.barh([features[i] for i in order], gain[order], color="tab:blue")
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (gain)")
    return fig


def plot_contributions(
    contributions: np.ndarray,
    matrix: np.ndarray,
    features: Sequence[str],
    *,
    top: int = 15,
    max_points: int = 3000,
    seed: int = 0,
) -> Figure:
    """A SHAP-style summary (beeswarm) from LightGBM ``pred_contrib``: a row per feature, a dot per customer
    at its contribution, coloured by the feature's value (rank within the sample; grey when missing)."""
    contributions = np.asarray(contributions, dtype=np.float64)[:, : len(features)]
    matrix = np.asarray(matrix, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if len(matrix) > max_points:
        pick = rng.choice(len(matrix), max_points, replace=False)
        contributions, matrix = contributions[pick], matrix[pick]
    order = np.argsort(-np.abs(contributions).mean(axis=0))[:top][::-1]
    fig = _figure(7.5, max(3.0, 0.35 * len(order) + 1.2))
    ax = fig.add_subplot()
    scatter = None
    for row, j in enumerate(order):
        x = contributions[:, j]
        values = matrix[:, j]
        finite = ~np.isnan(values)
        colour = np.full(len(values), np.nan)
        if finite.any():
            ranks = values[finite].argsort().argsort()
            colour[finite] = ranks / max(finite.sum() - 1, 1)
        jitter = rng.uniform(-0.3, 0.3, len(x))
        ax.scatter(x[~finite], row + jitter[~finite], s=4, color="lightgrey", alpha=0.6)
        scatter = ax.scatter(
            x[finite], row + jitter[finite], s=4, c=colour[finite], cmap="coolwarm", vmin=0, vmax=1, alpha=0.7
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), [features[j] for j in order])
    ax.set_xlabel("contribution to the score (log-odds)")
    ax.set_title("Feature contributions (TreeSHAP via pred_contrib)")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, pad=0.01)
        bar.set_label("feature value (low -> high)")
    return fig


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
