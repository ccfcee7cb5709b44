"""The churn job's candidates and the choice between them, on one holdout (pure).

Why: a short purchase log (one cohort, months of history) is where BG/NBD is at its best and trees at their
worst: the trees learn from label windows that must be complete inside the data, BG/NBD extrapolates to
any horizon. Whichever ranks better is data-dependent, so the job does not guess: every candidate is scored
on the same validation cutoff and the best by the promotion metric is the one registered (ties go to the
earlier candidate of ``CANDIDATES``). By construction the champion's holdout metric is the maximum over the
candidates, BG/NBD among them.

Candidates (all ``models.scorer.Scorer``s over the same input columns, see
``models.estimators.churn_scorers``):

- ``lightgbm``: the trees as ``models.estimators.training.train`` fitted and calibrated them;
- ``bgnbd_p_none``: BG/NBD's own P(no purchase over the requested horizon);
- ``bgnbd_expected``: BG/NBD's expected purchases over the horizon, Platt-calibrated on the calibration
  cutoff (ranks differently from P(none): a heavy buyer who may have left vs a light one who is alive);
- ``stack``: a logistic regression of the trees' raw margin and both BG/NBD signals, fitted on the
  validation cutoff and judged there by cross-fitting (``cross_fitted_stack`` says why).

BG/NBD's parameters are those fitted on each cutoff's own vectors (``churn_steps.churn_frame``), so the
holdout never sees them fitted past its cutoff; the served candidates use the parameters refitted on the
vectors as of the data's end (``served``): BG/NBD needs no labels, so nothing is lost by fitting it on the
freshest history, and the trees and weights are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.estimators.churn_scorers import IDENTITY, BgnbdScorer, StackedScorer
from models.estimators.training import TrainingResult
from models.evaluation import classification_metrics, is_better
from models.inputs import BgnbdParams
from models.scorer.calibration import Calibrator
from models.scorer.scorer import Scorer

log = logging.getLogger(__name__)

CANDIDATES: tuple[str, ...] = ("lightgbm", "bgnbd_p_none", "bgnbd_expected", "stack")
STACK_FOLDS = 5


@dataclass
class CandidateChoice:
    """Each candidate's holdout metrics and served scorer, and which one won (and by what)."""

    chosen: str
    metric: str
    metrics: dict[str, dict[str, float]]
    proba_val: dict[str, np.ndarray] = field(repr=False)
    served: dict[str, Scorer] = field(repr=False)
    weights: tuple[float, ...] | None = None

    def logged(self) -> dict[str, float]:
        """``candidate_<name>_val_<metric>`` for every candidate (MLflow metrics)."""
        return {f"candidate_{name}_val_{k}": v for name, m in self.metrics.items() for k, v in m.items()}

    def sentence(self) -> str:
        """The report line: who won on the holdout, with every candidate's figure."""
        key = self.metric.removeprefix("val_")
        figures = ", ".join(f"{name} {m[key]:.4f}" for name, m in self.metrics.items())
        return f"champion candidate: {self.chosen} (holdout {key}: {figures})"


def platt(margin: np.ndarray, y: np.ndarray) -> Calibrator:
    """A sigmoid of the margin fitted by logistic regression (nearly unpenalised)."""
    model = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
    return Calibrator("sigmoid", a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))


def fit_weights(parts: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """Intercept and weights of the stack, by a lightly penalised logistic regression on its parts.

    The parts are standardised first (a logit of P(none) spans +-14, the trees' margin a few units):
    unscaled, lbfgs stops far from the optimum and the stack ranks worse than its own parts."""
    mean, scale = parts.mean(axis=0), parts.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=100.0, max_iter=5000).fit((parts - mean) / scale, y)
    w = model.coef_[0] / scale
    return (float(model.intercept_[0] - w @ mean), *(float(v) for v in w))


def cross_fitted_stack(
    parts: np.ndarray, y: np.ndarray, folds: int = STACK_FOLDS, seed: int = 0
) -> tuple[tuple[float, ...], np.ndarray]:
    """The stack's weights on the validation cutoff, and its honest holdout probabilities there.

    Why the validation cutoff: it is the only one where the trees' margin is out of sample. On the
    calibration cutoff the trees were early-stopped, and with weekly cutoffs its label window overlaps
    those the trees were grown on, so their margin there is over-confident: the regression gave them
    twice their weight and turned BG/NBD's sign (CDNOW: a stack at 0.69 against parts at 0.75 and 0.76).
    The weights are four numbers, so cross-fitting keeps the comparison fair: each fold of customers is
    scored with weights fitted on the others (``folds``), and those out-of-fold probabilities are what the
    candidates are compared on; the served weights are fitted on every row."""
    order = np.random.default_rng(seed).permutation(len(y))
    proba = np.empty(len(y))
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        if len(np.unique(y[rest])) < 2:
            proba[part] = float(np.mean(y[rest]))
            continue
        w = np.asarray(fit_weights(parts[rest], y[rest]))
        proba[part] = 0.5 * (1.0 + np.tanh(0.5 * (w[0] + parts[part] @ w[1:])))
    return fit_weights(parts, y), proba


def calibration_rows(frame: pd.DataFrame, result: TrainingResult) -> pd.DataFrame | None:
    """The calibration cutoff's rows (the latest training cutoff), or None when the inner split was random."""
    if result.model.split_ != "out_of_time":
        return None
    validation = set(pd.to_datetime(result.validation["as_of"], utc=True).unique())
    stamps = pd.to_datetime(frame["as_of"], utc=True)
    train = sorted(set(stamps.unique()) - validation)
    return frame.loc[(stamps == train[-1]).to_numpy()] if train else None


def choose_candidate(
    result: TrainingResult,
    frame: pd.DataFrame,
    bgnbd_by_cutoff: Mapping[pd.Timestamp, BgnbdParams],
    served: Mapping[str, float],
    *,
    horizon_days: int,
    metric: str = "val_roc_auc",
    candidates: Sequence[str] = CANDIDATES,
) -> CandidateChoice:
    """Fit the candidates (see the module docstring), score each on ``result``'s holdout, pick the best.

    ``frame`` is the whole training frame (``churn_steps.churn_frame``), ``bgnbd_by_cutoff`` its per-cutoff
    BG/NBD parameters, ``served`` the parameters refitted as of the data's end, ``horizon_days`` the horizon
    the user asked for (BG/NBD extrapolates to it even when the labels are shorter).
    """
    trees = result.scorer()
    y_val = result.y_val
    x_val = trees.matrix(result.validation)
    val_cutoff = pd.Timestamp(pd.to_datetime(result.validation["as_of"], utc=True).max())
    reference = dict(trees.reference)

    def bgnbd(params: Mapping[str, float], signal: str, calibrator: Calibrator = IDENTITY) -> BgnbdScorer:
        return BgnbdScorer(
            params,
            horizon_days,
            trees.features,
            signal=signal,
            calibrator=calibrator,
            reference=reference,
            meta=trees.meta,
        )

    at_val = bgnbd_by_cutoff[val_cutoff].params
    proba: dict[str, np.ndarray] = {"lightgbm": result.proba_val}
    out: dict[str, Scorer] = {"lightgbm": trees}
    proba["bgnbd_p_none"] = bgnbd(at_val, "p_none").predict_proba(x_val)
    out["bgnbd_p_none"] = bgnbd(served, "p_none")
    cal = calibration_rows(frame, result)
    if cal is not None and len(np.unique(cal[result.spec.label])) == 2:
        y_cal = cal[result.spec.label].to_numpy(np.int64)
        x_cal = trees.matrix(cal)
        cal_cutoff = pd.Timestamp(pd.to_datetime(cal["as_of"], utc=True).max())
        at_cal = bgnbd_by_cutoff[cal_cutoff].params
        sigmoid = platt(bgnbd(at_cal, "expected").margin(x_cal), y_cal)
        proba["bgnbd_expected"] = bgnbd(at_val, "expected", sigmoid).predict_proba(x_val)
        out["bgnbd_expected"] = bgnbd(served, "expected", sigmoid)
    else:
        log.info("no out-of-time calibration cutoff with both classes: no calibrated BG/NBD E[n]")
    weights = None
    if "stack" in candidates:
        parts = StackedScorer(trees, bgnbd(at_val, "p_none"), (0.0, 1.0, 0.0, 0.0)).parts(x_val)
        weights, proba["stack"] = cross_fitted_stack(parts, y_val)
        out["stack"] = StackedScorer(trees, bgnbd(served, "p_none"), weights)
    names = [c for c in candidates if c in proba]
    metrics = {name: classification_metrics(y_val, proba[name]) for name in names}
    key = metric.removeprefix("val_")
    chosen = names[0]
    for name in names[1:]:
        if is_better(metric, metrics[name][key], metrics[chosen][key]):
            chosen = name
    for name, scorer in out.items():
        scorer.meta["candidate"] = name
    return CandidateChoice(
        chosen=chosen,
        metric=metric,
        metrics=metrics,
        proba_val={n: proba[n] for n in names},
        served={n: out[n] for n in names},
        weights=weights,
    )
