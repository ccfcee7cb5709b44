"""Uplift on a randomised holdout, no ground truth needed: the Qini curve and the uplift curve.

Radcliffe 2007; Gutierrez & Gerardy 2017: target customers by decreasing predicted uplift and count
incremental responses, treated minus control scaled to the treated count, against random targeting. With
simulated data the true uplift is known too, and ``uplift_report`` adds its rank correlation with the
prediction. Rows may be weighted by the inverse of their logged assignment probability
(``models.estimators.uplift.ipw_weights``), so arms sampled unequally count as in the population.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loyalty_core import InvalidInput
from models.estimators.uplift import ipw_weights
from models.inputs.frames import check_binary


def _prepare(
    y: Any, score: Any, treated: Any, weight: Any | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    target = check_binary(y, "y").astype(np.float64)
    t = check_binary(treated, "treated").astype(bool)
    s = np.asarray(score, dtype=np.float64)
    w = np.ones(len(target)) if weight is None else np.asarray(weight, dtype=np.float64)
    if not (len(target) == len(t) == len(s) == len(w)):
        raise InvalidInput("y, score, treated and weight must have the same length")
    if not t.any() or t.all():
        raise InvalidInput("uplift evaluation needs both treated and control rows")
    return target, s, t, w


def _cumulative(
    y: np.ndarray, score: np.ndarray, treated: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted cumulative counts and responses per arm at the end of each block of tied scores."""
    order = np.argsort(-score, kind="stable")
    s, yy, tt, ww = score[order], y[order], treated[order], weight[order]
    w_t = np.cumsum(ww * tt)
    w_c = np.cumsum(ww * ~tt)
    y_t = np.cumsum(ww * yy * tt)
    y_c = np.cumsum(ww * yy * ~tt)
    # evaluate only where the score changes, so tied rows are taken (or not) together
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    zero = np.zeros(1)
    return (
        np.r_[zero, w_t[ends]],
        np.r_[zero, w_c[ends]],
        np.r_[zero, y_t[ends]],
        np.r_[zero, y_c[ends]],
        np.r_[zero, (w_t + w_c)[ends]],
    )


def qini_curve(y: Any, score: Any, treated: Any, weight: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(share targeted, incremental responses per customer of the base) when targeting by decreasing score.

    Qini(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k) (Radcliffe 2007), with weighted counts, divided by the
    whole base so the end point is the average effect of treating everyone.
    """
    target, s, t, w = _prepare(y, score, treated, weight)
    w_t, w_c, y_t, y_c, n = _cumulative(target, s, t, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(w_c > 0, y_t - y_c * w_t / w_c, y_t)
    total = n[-1]
    return n / total, qini / total


def uplift_curve(
    y: Any, score: Any, treated: Any, weight: Any | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(share targeted, (rate_t - rate_c) among the targeted x their share): the curve whose area is AUUC."""
    target, s, t, w = _prepare(y, score, treated, weight)
    w_t, w_c, y_t, y_c, n = _cumulative(target, s, t, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_t = np.where(w_t > 0, y_t / w_t, 0.0)
        rate_c = np.where(w_c > 0, y_c / w_c, 0.0)
    total = n[-1]
    return n / total, (rate_t - rate_c) * n / total


def _area_over_random(x: np.ndarray, curve: np.ndarray) -> float:
    """Area between the curve and the straight line to its end point (random targeting)."""
    area = float(np.trapezoid(curve, x))
    return area - 0.5 * float(curve[-1])


def qini_coefficient(y: Any, score: Any, treated: Any, weight: Any | None = None) -> float:
    """Area between the Qini curve and random targeting; > 0 means the score finds incremental responders."""
    x, q = qini_curve(y, score, treated, weight)
    return _area_over_random(x, q)


def auuc(y: Any, score: Any, treated: Any, weight: Any | None = None) -> float:
    """Area under the uplift curve over random targeting (same units as ``qini_coefficient``)."""
    x, u = uplift_curve(y, score, treated, weight)
    return _area_over_random(x, u)


def uplift_at(y: Any, score: Any, treated: Any, fraction: float = 0.3, weight: Any | None = None) -> float:
    """Treated minus control response rate among the top ``fraction`` by score (ties taken together).

    What a marketer gets from targeting that share: compare it with the average effect of treating everyone.
    """
    if not 0.0 < fraction <= 1.0:
        raise InvalidInput(f"fraction must be in (0, 1], got {fraction}", field="fraction")
    target, s, t, w = _prepare(y, score, treated, weight)
    w_t, w_c, y_t, y_c, n = _cumulative(target, s, t, w)
    k = int(np.searchsorted(n / n[-1], fraction, side="left"))
    k = min(max(k, 1), len(n) - 1)
    if w_t[k] == 0 or w_c[k] == 0:
        raise InvalidInput(f"the top {fraction:.0%} holds no treated or no control row")
    return float(y_t[k] / w_t[k] - y_c[k] / w_c[k])


def average_effect(y: Any, treated: Any, probability: Any | None = None) -> float:
    """The average treatment effect, IPW-weighted (Hajek): unbiased even when arms were unequally likely."""
    target = check_binary(y, "y").astype(np.float64)
    t = check_binary(treated, "treated").astype(bool)
    w = ipw_weights(t, probability)
    return float(np.average(target[t], weights=w[t]) - np.average(target[~t], weights=w[~t]))


def uplift_report(
    y: Any,
    score: Any,
    treated: Any,
    weight: Any | None = None,
    true_uplift: Any | None = None,
) -> dict[str, float]:
    """Qini coefficient and AUUC on a randomised holdout, plus correlations with the true uplift if known."""
    report = {
        "qini_coefficient": qini_coefficient(y, score, treated, weight),
        "auuc": auuc(y, score, treated, weight),
        "uplift_at_30pct": uplift_at(y, score, treated, 0.3, weight),
    }
    if true_uplift is not None:
        from scipy.stats import pearsonr, spearmanr

        truth = np.asarray(true_uplift, dtype=np.float64)
        s = np.asarray(score, dtype=np.float64)
        report["spearman_true_uplift"] = float(spearmanr(s, truth).statistic)
        report["pearson_true_uplift"] = float(pearsonr(s, truth).statistic)
    return report
