"""The MLflow pyfunc face of a model: ``mlflow.pyfunc.load_model(uri).predict(frame)`` -> probabilities.

The wrapper itself holds nothing (its pickle is a class reference); everything it predicts with is read in
``load_context`` from the two files the scorer uses, logged as the model's artifacts. It goes through the
DataFrame path on purpose: columns are picked by name, so a frame with extra or reordered columns works,
which is what ``mlflow models serve`` and notebook users send. The service uses
``models.scorer.scorer`` instead.

Importing this module imports MLflow: only ``models.registry.tracking`` does, inside its functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from models.scorer.scorer import BOOSTER_FILE, META_FILE, Scorer

ARTIFACT_BOOSTER = "booster"
ARTIFACT_META = "scorer"


class ScoringModel(PythonModel):
    """Calibrated probability of the positive class for each row of a DataFrame of features."""

    def load_context(self, context: Any) -> None:
        booster_path = Path(context.artifacts[ARTIFACT_BOOSTER])
        meta_path = Path(context.artifacts[ARTIFACT_META])
        if booster_path.name != BOOSTER_FILE or meta_path.name != META_FILE:
            raise ValueError(f"expected {BOOSTER_FILE} and {META_FILE}, got {booster_path}, {meta_path}")
        self._booster = lgb.Booster(model_file=str(booster_path))
        self._scorer = Scorer.from_dir(booster_path.parent)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        frame = pd.DataFrame(model_input)
        missing = [f for f in self._scorer.features if f not in frame.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")
        features = frame[list(self._scorer.features)].astype("float64")
        margin = np.asarray(self._booster.predict(features, raw_score=True), dtype=np.float64)
        return self._scorer.calibrator.apply(margin)
