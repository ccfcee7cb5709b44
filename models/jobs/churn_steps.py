"""The churn job's pure steps: build the training frame, fit, evaluate against the baselines.

Inputs per cutoff: the customer features plus three BG/NBD columns (``models.inputs``), from a BG/NBD
fitted on that cutoff's own feature vectors, i.e. only on facts before the cutoff. The validation cutoff's
parameters ship with the model (scorer meta ``bgnbd``) so the service and batch scoring compute the same
columns.

Baselines on the same holdout: the recency x frequency rule (``baseline_val_*``, inside ``train``) and the
classic BG/NBD fitted on the purchase log itself (distinct purchase days of qualifying activity before
``as_of``, ``models.estimators.summarise``): ``bgnbd_val_*`` rank by its expected purchases over the horizon
(low = churn), ``bgnbd_palive_val_roc_auc`` by 1 - P(alive) alone, ``bgnbd_pnone_val_*`` use its
probability of no purchase in the horizon as the churn probability.

Customers who stopped long before a cutoff are easy to call, and they are many; ``*_active30_*`` metrics
repeat the ROC AUC on the holdout customers with a transaction in the 30 days before it, where the
models have to tell who is about to go.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from loyalty_core import InvalidInput
from models.estimators.bgnbd import BetaGeoNBD, summarise
from models.estimators.training import TrainingResult, train
from models.evaluation import classification_metrics, gap_to_truth, prefixed
from models.inputs import BgnbdParams, ChurnInputs, bgnbd_history
from models.jobs.common import Progress, ResultWithMeta, day, no_progress
from pipelines import (
    CHURN_ACTIVITY,
    FEATURE_NAMES,
    FeatureConfig,
    LedgerFrames,
    churn_labels,
    compute_features,
)

if TYPE_CHECKING:
    from models.jobs.churn_candidates import CandidateChoice
    from models.scorer.scorer import Scorer

log = logging.getLogger(__name__)


def fit_bgnbd(history: np.ndarray, horizon_days: int) -> BgnbdParams:
    """BG/NBD on the rows with a history (``assemble.bgnbd_history``); a tiny penalty if plain ML fails."""
    ok = ~np.isnan(history).any(axis=1)
    if ok.sum() < 20:
        raise InvalidInput("too few customers with transactions to fit BG/NBD (need 20)", field="cutoffs")
    frame = pd.DataFrame(history[ok], columns=["frequency", "recency", "T"])
    for penalizer in (0.0, 0.001, 0.01):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                model = BetaGeoNBD(penalizer=penalizer).fit(frame)
            except ConvergenceWarning as exc:
                log.info("BG/NBD (penalizer %g) did not converge: %s", penalizer, exc)
                continue
        return BgnbdParams(**model.params_, horizon_days=horizon_days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD(penalizer=0.01).fit(frame)
    return BgnbdParams(**model.params_, horizon_days=horizon_days)


def churn_frame(
    frames: LedgerFrames,
    cutoffs: Sequence[pd.Timestamp],
    *,
    horizon_days: int,
    end: pd.Timestamp,
    config: FeatureConfig,
    progress: Progress = no_progress,
    bgnbd_horizon_days: int | None = None,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, BgnbdParams]]:
    """Keys, model inputs (``ChurnInputs`` columns) and ``churned`` for every cutoff, stacked.

    ``bgnbd_horizon_days``: how far the BG/NBD columns look (default: the labels' ``horizon_days``); a
    requested horizon longer than complete label windows allow goes here (BG/NBD extrapolates)."""
    look = horizon_days if bgnbd_horizon_days is None else bgnbd_horizon_days
    parts = []
    params: dict[pd.Timestamp, BgnbdParams] = {}
    for cutoff in cutoffs:
        features = compute_features(frames, cutoff, config)
        labels = churn_labels(frames, cutoff, horizon_days=horizon_days, end=end)
        joined = features.merge(labels, on=["customer_id", "as_of"], how="inner", validate="1:1")
        matrix = np.ascontiguousarray(joined[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
        params[cutoff] = fit_bgnbd(bgnbd_history(matrix), look)
        inputs = ChurnInputs(FEATURE_NAMES, bgnbd=params[cutoff])
        part = pd.DataFrame(inputs.matrix(matrix), columns=list(inputs.columns))
        for col in FEATURE_NAMES:  # keep the catalogue's integer dtypes (the model signature shows them)
            if joined[col].dtype.kind == "i":
                part[col] = joined[col].to_numpy()
        part.insert(0, "customer_id", joined["customer_id"].to_numpy())
        part.insert(1, "as_of", joined["as_of"].to_numpy())
        part["churned"] = joined["churned"].to_numpy()
        parts.append(part)
        progress("features", 1, len(cutoffs))
    frame = pd.concat(parts, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame, params


def classic_bgnbd_scores(
    frames: LedgerFrames, as_of: pd.Timestamp, customers: pd.Series, horizon_days: int
) -> dict[str, np.ndarray]:
    """The textbook BG/NBD on the purchase log before ``as_of`` (distinct days of qualifying activity, in
    weeks): per customer of ``customers``, expected purchases over the horizon, P(alive), P(no purchase).
    Customers without any purchase before ``as_of`` get 0 expected purchases (the model says nothing)."""
    txns = frames.transactions
    qualifying = txns[txns["type"].astype("str").isin(list(CHURN_ACTIVITY)).to_numpy()]
    rfm = summarise(
        pd.DataFrame(
            {"customer_id": qualifying["customer_id"].astype("str"), "occurred_at": qualifying["occurred_at"]}
        ),
        as_of=as_of,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD().fit(rfm)
    t = horizon_days / 7.0
    expected = model.expected_purchases(t, rfm["frequency"], rfm["recency"], rfm["T"])
    alive = model.p_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    none = model.churn_score(t, rfm["frequency"], rfm["recency"], rfm["T"])
    pos = rfm.index.get_indexer(pd.Index(customers.astype("str")))
    has = pos >= 0

    def pick(values: np.ndarray, missing: float) -> np.ndarray:
        return np.where(has, np.asarray(values)[np.where(has, pos, 0)], missing)

    return {
        "expected": pick(expected, 0.0),
        "p_alive": pick(alive, 1.0),
        "p_none": pick(none, 1.0),
        "params": np.array([model.params_[p] for p in ("r", "alpha", "a", "b")]),
    }


def bgnbd_metrics(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Holdout metrics of the classic BG/NBD: expected purchases turned into a rank-preserving churn score
    (``exp(-E)``, so log-loss and Brier are shown but only its ranking metrics mean much), P(none) as it is,
    and 1 - P(alive)."""
    ranked = np.exp(-np.asarray(scores["expected"], dtype=np.float64))
    out = prefixed(classification_metrics(y, ranked), "bgnbd_val_")
    out.update(prefixed(classification_metrics(y, np.clip(scores["p_none"], 0.0, 1.0)), "bgnbd_pnone_val_"))
    out["bgnbd_palive_val_roc_auc"] = classification_metrics(y, 1.0 - np.asarray(scores["p_alive"]))[
        "roc_auc"
    ]
    return out


def active_metrics(
    result: TrainingResult, classic: Mapping[str, np.ndarray], days: int = 30
) -> dict[str, float]:
    """ROC AUC of each score on the holdout customers with a transaction in the last ``days`` days."""
    recent = result.validation["days_since_last_txn"].to_numpy(dtype=np.float64, na_value=np.nan) <= days
    y = result.y_val[recent]
    if len(np.unique(y)) < 2:
        return {}
    tag = f"active{days}"
    scores = {
        f"val_{tag}_roc_auc": result.proba_val,
        f"baseline_{tag}_val_roc_auc": result.baseline_proba_val,
        f"bgnbd_{tag}_val_roc_auc": -np.asarray(classic["expected"]),
        f"bgnbd_pnone_{tag}_val_roc_auc": np.asarray(classic["p_none"]),
    }
    out = {
        name: classification_metrics(y, np.clip(s[recent], -1e300, None))["roc_auc"]
        for name, s in scores.items()
    }
    out[f"val_{tag}_rows"] = float(recent.sum())
    return out


def fit_churn(frame: pd.DataFrame, model: Mapping[str, Any]) -> TrainingResult:
    """LightGBM and the recency x frequency rule, fitted out of time; metrics on the last cutoff."""
    return train(frame, "churn", params=model)


def evaluate_churn(
    result: TrainingResult,
    frames: LedgerFrames,
    as_of: pd.Timestamp,
    horizon_days: int,
    truth: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The classic BG/NBD's holdout metrics, the recently active customers' and, with the simulator's
    ``truth`` (``pipelines.churn_truth``), the gap to it; added to ``result.metrics``. Returns the
    classic BG/NBD's scores (its ``params`` go in the run's data)."""
    val = result.validation
    classic = classic_bgnbd_scores(frames, as_of, val["customer_id"], horizon_days)
    result.metrics.update(bgnbd_metrics(result.y_val, classic))
    result.metrics.update(active_metrics(result, classic))
    if truth is not None:
        result.metrics.update(
            gap_to_truth(result.validation, result.y_val, result.proba_val, truth, "p_churn")
        )
    return classic


@dataclass
class ChurnResult(ResultWithMeta):
    """The churn run's result: ``scorer()`` is the chosen candidate (``models.jobs.churn_candidates``), which
    is what ``models.registry.tracking.log_training`` saves and registers; None = the trees."""

    champion: Scorer | None = None

    def scorer(self, *, num_threads: int = 0) -> Any:
        if self.champion is None:
            return super().scorer(num_threads=num_threads)
        self.champion.meta.update(self.scorer_meta)
        self.champion.meta["candidate"] = self.data.get("candidate", "lightgbm")
        self.champion.num_threads = num_threads
        return self.champion


def served_bgnbd(frames: LedgerFrames, until: pd.Timestamp, config: FeatureConfig) -> dict[str, float]:
    """BG/NBD refitted on every customer's vector as of ``until`` (the end of what the run read): the
    served BG/NBD candidates' parameters. Unsupervised, so the freshest history costs no holdout."""
    features = compute_features(frames, until, config)
    matrix = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
    return fit_bgnbd(bgnbd_history(matrix), 1).params


def adopt_choice(result: ChurnResult, choice: CandidateChoice, label_days: int) -> None:
    """Make the chosen candidate the registered model: its holdout metrics become ``val_*`` (what
    promotion compares), every candidate's are logged as ``candidate_<name>_val_*``, and the data says
    which won and over which label window."""
    result.metrics.update(choice.logged())
    for k, v in choice.metrics[choice.chosen].items():
        result.metrics[f"val_{k}"] = v
    result.proba_val = choice.proba_val[choice.chosen]
    result.data["candidate"] = choice.chosen
    result.data["candidates"] = dict(choice.metrics)
    result.data["label_days"] = label_days
    if choice.weights is not None:
        result.data["stack_weights"] = list(choice.weights)
    result.champion = None if choice.chosen == "lightgbm" else choice.served[choice.chosen]


def churn_result(
    result: TrainingResult,
    bgnbd_by_cutoff: Mapping[pd.Timestamp, BgnbdParams],
    classic: Mapping[str, np.ndarray],
    as_of: pd.Timestamp,
    horizon_days: int,
) -> ChurnResult:
    """The result as it is registered: the validation cutoff's BG/NBD parameters travel with the scorer
    (the service computes the same columns), every cutoff's and the classic BG/NBD's go in the run's data."""
    wrapped = ChurnResult.wrap(
        result, {"bgnbd": bgnbd_by_cutoff[as_of].as_dict(), "horizon_days": horizon_days, "kind": "churn"}
    )
    assert isinstance(wrapped, ChurnResult)  # wrap builds ``cls``
    out = wrapped
    out.data["horizon_days"] = horizon_days
    out.data["bgnbd_by_cutoff"] = {day(c): p.as_dict() for c, p in bgnbd_by_cutoff.items()}
    out.data["classic_bgnbd"] = dict(zip(("r", "alpha", "a", "b"), classic["params"].tolist(), strict=True))
    return out
