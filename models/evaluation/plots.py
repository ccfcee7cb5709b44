"""Plots of binary scores on a holdout (calibration, gains and lift, importance, contributions) for the model
card and the notebooks.

Plots are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas renders them); no pyplot state,
so they are safe in threads and do not touch an interactive backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from models.evaluation.metrics import gains

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
