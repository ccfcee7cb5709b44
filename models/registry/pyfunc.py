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

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from models.estimators.churn_scorers import load_scorer
from models.scorer.scorer import META_FILE

ARTIFACT_BOOSTER = "booster"
ARTIFACT_META = "scorer"


class ScoringModel(PythonModel):
    """Calibrated probability of the positive class for each row of a DataFrame of features."""

    def load_context(self, context: Any) -> None:
        meta_path = Path(context.artifacts[ARTIFACT_META])
        if meta_path.name != META_FILE:
            raise ValueError(f"expected {META_FILE}, got {meta_path}")
        # any kind of scorer (LightGBM, BG/NBD, a stack): scorer.json says which, booster.txt sits beside it
        self._scorer = load_scorer(meta_path.parent)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        frame = pd.DataFrame(model_input)
        missing = [f for f in self._scorer.features if f not in frame.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")
        features = frame[list(self._scorer.features)].astype("float64")
        return self._scorer.predict_proba(np.ascontiguousarray(features.to_numpy(dtype=np.float64)))
