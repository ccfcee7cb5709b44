"""The uplift job's pure steps: model inputs per campaign row, the out-of-time split, the choice and fit of
the learner (``models.estimators.UpliftSelector``: cross-validated Qini on the training campaigns only) and
its evaluation on the holdout campaign (and against the simulator's truth). See ``models.jobs.uplift``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from loyalty_core import InvalidInput
from models.estimators import CANDIDATES, UpliftSelector, ipw_weights
from models.evaluation import auuc, qini_coefficient
from models.inputs import OfferInputs
from models.registry.uplift_scorers import TARGET, Holdout, UpliftScorers
from pipelines import FEATURE_NAMES, FeatureConfig, LedgerFrames, compute_features


def uplift_frame(
    frames: LedgerFrames,
    labels: pd.DataFrame,
    inputs: OfferInputs,
    features_at: dict[pd.Timestamp, pd.DataFrame],
    config: FeatureConfig,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, pd.DataFrame]]:
    """Model inputs per uplift row (features as of each row's cutoff), with the label columns."""
    parts = []
    for cutoff, rows in labels.groupby("cutoff", sort=True):
        stamp = pd.Timestamp(str(cutoff))
        if stamp not in features_at:
            features_at[stamp] = compute_features(frames, stamp, config)
        features = features_at[stamp]
        matrix = np.ascontiguousarray(
            features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])
        pos = pd.Index(features["customer_id"]).get_indexer(pd.Index(rows["customer_id"]))
        x = inputs.pairs(matrix, np.where(pos < 0, len(matrix) - 1, pos), rows["offer_id"].tolist())
        part = pd.DataFrame(x, columns=list(inputs.columns))
        for col in ("customer_id", "offer_id", "treated", "probability", "outcome", "met"):
            part[col] = rows[col].to_numpy()
        part["as_of"] = stamp
        parts.append(part)
    return pd.concat(parts, ignore_index=True), features_at


def truth_metrics(
    truth: pd.DataFrame,
    features: pd.DataFrame,
    inputs: OfferInputs,
    arms: Sequence[str],
    scorers: UpliftScorers,
    propensity: Any,
) -> dict[str, float]:
    """Spearman of predicted uplift (and of the propensity) with the true effects, all customers x arms."""
    matrix = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
    x = inputs.matrix(matrix, list(arms))
    predicted = scorers.predict(x)
    prop = propensity.predict_proba(x)[:, 1]
    pairs = pd.DataFrame(
        {
            "customer_id": np.repeat(features["customer_id"].astype("str").to_numpy(), len(arms)),
            "offer_id": np.tile(np.asarray(arms, dtype=object), len(features)),
            "predicted": predicted,
            "propensity": prop,
        }
    ).merge(truth, on=["customer_id", "offer_id"], how="inner")
    if len(pairs) < 10:
        raise InvalidInput("the truth file does not match this ledger's customers and offers", field="truth")
    return {
        "uplift_truth_spearman": float(spearmanr(pairs["predicted"], pairs["uplift"]).statistic),
        "uplift_truth_spearman_incremental": float(
            spearmanr(pairs["predicted"], pairs["incremental_uplift"]).statistic
        ),
        "propensity_truth_spearman": float(spearmanr(pairs["propensity"], pairs["uplift"]).statistic),
        "propensity_truth_spearman_incremental": float(
            spearmanr(pairs["propensity"], pairs["incremental_uplift"]).statistic
        ),
        "uplift_truth_pairs": float(len(pairs)),
    }


def fit_uplift(
    rows: pd.DataFrame,
    columns: Sequence[str],
    model: Mapping[str, Any],
    *,
    candidates: Sequence[str] = CANDIDATES,
    folds: int = 3,
) -> UpliftSelector:
    """The learner chosen among ``candidates`` by ``folds``-fold Qini on ``uplift_frame`` rows (the training
    campaigns only), refitted on all of them; both arms compared on ``TARGET`` (see ``models.jobs.uplift``),
    with the ``[uplift.model]`` hyper-parameters."""
    selector = UpliftSelector(
        candidates=tuple(candidates), folds=folds, params={"features": list(columns), **model}
    )
    return selector.fit(rows, rows[TARGET])


def selection_metrics(
    selector: UpliftSelector, train: pd.DataFrame, columns: Sequence[str], scorers: UpliftScorers
) -> dict[str, float]:
    """The cross-validated Qini per candidate (mean, sd) and how faithfully the served pair reproduces the
    chosen learner's uplift on the training rows (Spearman; 1.0 for a T-learner, served as it is)."""
    x_train = np.ascontiguousarray(train[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))
    served = scorers.predict(x_train)
    own = selector.predict_uplift(x_train)
    agree = 1.0 if np.ptp(own) == 0 or np.ptp(served) == 0 else float(spearmanr(served, own).statistic)
    return {**selector.cv_metrics(), "uplift_served_spearman": agree}


@dataclass(frozen=True, slots=True)
class UpliftSplit:
    """The uplift rows split out of time: the campaigns before the last train, the last is the holdout."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_cutoff: pd.Timestamp


def split_campaigns(frame: pd.DataFrame, cutoffs: Sequence[Any]) -> UpliftSplit:
    holdout_cutoff = pd.Timestamp(cutoffs[-1])
    hold = (frame["as_of"] == holdout_cutoff).to_numpy()
    return UpliftSplit(
        frame[~hold].reset_index(drop=True), frame[hold].reset_index(drop=True), holdout_cutoff
    )


def evaluate_uplift(
    holdout: pd.DataFrame, columns: Sequence[str], scorers: UpliftScorers, propensity: Any
) -> tuple[dict[str, float], Holdout]:
    """Qini and AUUC of the predicted uplift on the holdout campaign, against ranking the same rows by the
    propensity model (IPW by the logged assignment probability), and the holdout as the registry judges it
    (its ``labels``, ``features`` and ``catalogue`` are for re-scoring a champion: the wiring fills them)."""
    x_hold = np.ascontiguousarray(holdout[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))
    predicted = scorers.predict(x_hold)
    y = holdout[TARGET].to_numpy()
    treated = holdout["treated"].to_numpy()
    weight = ipw_weights(treated.astype(bool), holdout["probability"].to_numpy(dtype=np.float64))
    by_propensity = propensity.predict_proba(x_hold)[:, 1]
    metrics = {
        "uplift_qini": qini_coefficient(y, predicted, treated, weight),
        "uplift_auuc": auuc(y, predicted, treated, weight),
        "uplift_qini_propensity": qini_coefficient(y, by_propensity, treated, weight),
    }
    judged = Holdout(
        labels=pd.DataFrame(),
        features=pd.DataFrame(),
        catalogue=pd.DataFrame(),
        y=y,
        treated=treated,
        weight=weight,
        scores={"uplift model": predicted, "propensity model": by_propensity},
    )
    return metrics, judged
