"""The uplift model's two scorers (treated and control arm) and the holdout campaign they are judged on:
values only, so the uplift job's pure steps and the registry share them (MLflow stays in
``models.registry.uplift_model``).

Both arms are compared on ``TARGET``, ``met``: a transaction in the offer's validity met its condition,
activated or not (see ``models.jobs.uplift``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators import TwoModelUplift, UpliftLearner, UpliftSelector
from models.inputs import OfferInputs
from models.scorer.calibration import Calibrator
from models.scorer.scorer import Scorer
from pipelines import FEATURE_NAMES

UPLIFT_MODEL = "loyalty-offer-uplift"
ARMS = ("treated", "control")
TARGET = "met"  # the uplift_labels column both arms are compared on (see the module docstring)


class UpliftScorers(NamedTuple):
    treated: Scorer
    control: Scorer
    version: str | None

    @property
    def features(self) -> tuple[str, ...]:
        return self.treated.features

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """P(meet the condition | sent) - P(meet the condition | not sent) per row."""
        return np.asarray(self.treated.predict_proba(matrix) - self.control.predict_proba(matrix))


@dataclass
class UpliftReport:
    rows: int
    train_rows: int
    holdout_rows: int
    holdout_cutoff: str
    metrics: dict[str, float]
    version: str | None = None
    promoted: bool = False
    reason: str = ""
    run_id: str | None = None
    scorers: UpliftScorers | None = field(default=None, repr=False)
    chosen: str = "t_learner"  # the learner the selector chose (models.estimators.UpliftSelector)
    cv_table: pd.DataFrame | None = field(default=None, repr=False)  # its cross-validated Qini per candidate

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"uplift ({self.chosen}, chosen by cross-validated Qini): {self.train_rows:,} training rows, "
            f"holdout campaign {self.holdout_cutoff} ({self.holdout_rows:,} rows): "
            f"Qini {m['uplift_qini']:.4f} (ranking by propensity instead: "
            f"{m['uplift_qini_propensity']:.4f}), AUUC {m['uplift_auuc']:.4f}"
        ]
        if "uplift_truth_spearman" in m:
            out.append(
                f"vs the simulator's truth: Spearman {m['uplift_truth_spearman_incremental']:.3f} with the "
                f"incremental uplift (what it estimates), {m['uplift_truth_spearman']:.3f} with the "
                f"completion uplift; the propensity alone {m['propensity_truth_spearman_incremental']:.3f} "
                f"and {m['propensity_truth_spearman']:.3f}"
            )
        if self.version is not None:
            out.append(f"{UPLIFT_MODEL} v{self.version}: {self.reason}")
        return out


def scorers_of(
    model: TwoModelUplift | UpliftLearner | UpliftSelector,
    rows: pd.DataFrame | None = None,
    *,
    num_threads: int = 0,
) -> UpliftScorers:
    """The fitted learner as two ``Scorer``s (identity calibration: the boosters' own log-odds).

    A T-learner gives its two arm models; any other learner (the S-, X-, DR-learner, the response ranking)
    is served as its treated and control probabilities distilled on ``rows``, its training rows
    (``UpliftLearner.served_boosters``), so the service's contract stays ``treated - control``."""
    learner = model.best_estimator_ if isinstance(model, UpliftSelector) else model
    native = learner.native_boosters()
    if native is None:
        if rows is None:
            raise InvalidInput(
                f"the {learner.name} learner is served through distilled boosters: pass its training rows",
                field="rows",
            )
        native = learner.served_boosters(rows)
    identity = Calibrator("sigmoid", a=1.0, b=0.0)
    arms = [
        Scorer(
            _named(booster, learner.features_),
            identity,
            learner.features_,
            meta={"kind": "uplift", "arm": arm, "learner": learner.name},
            num_threads=num_threads,
        )
        for arm, booster in zip(ARMS, native, strict=True)
    ]
    return UpliftScorers(arms[0], arms[1], None)


def _named(booster: lgb.Booster, features: Sequence[str]) -> lgb.Booster:
    """The booster with our column names (the learners were fitted on a bare matrix: Column_0, ...)."""
    lines = booster.model_to_string().splitlines()
    named = [
        ("feature_names=" + " ".join(features)) if ln.startswith("feature_names=") else ln for ln in lines
    ]
    return lgb.Booster(model_str="\n".join(named) + "\n")


@dataclass(frozen=True, slots=True)
class Holdout:
    """The holdout campaign's rows and what is needed to build any model's inputs for them (the champion
    may read other columns than the challenger)."""

    labels: pd.DataFrame  # uplift_labels rows of the holdout cutoff
    features: pd.DataFrame  # customer features as of that cutoff
    catalogue: pd.DataFrame
    y: np.ndarray
    treated: np.ndarray
    weight: np.ndarray
    # the rows' scores by each ranking the run compares (the new model's uplift, the propensity), for plots
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)

    def matrix(self, columns: Sequence[str]) -> np.ndarray:
        inputs = OfferInputs(FEATURE_NAMES, self.catalogue, columns=columns)
        matrix = np.ascontiguousarray(
            self.features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])
        pos = pd.Index(self.features["customer_id"]).get_indexer(pd.Index(self.labels["customer_id"]))
        rows = np.where(pos < 0, len(matrix) - 1, pos)
        return inputs.pairs(matrix, rows, self.labels["offer_id"].tolist())
