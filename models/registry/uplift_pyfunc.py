"""The MLflow pyfunc face of the uplift model: ``predict(frame)`` -> P(meet | sent) - P(meet | not sent).

Like ``models.registry.pyfunc`` it holds nothing itself: ``load_context`` reads the two scorers
(``treated/`` and ``control/`` folders, each ``booster.txt`` + ``scorer.json``) logged as the model's
artifacts. The service and batch scoring use ``models.registry.uplift_model.load_uplift`` instead.
Importing this module imports MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from models.scorer.scorer import Scorer


class UpliftModel(PythonModel):
    """Predicted uplift for each row of a DataFrame of the offer model's input columns."""

    def load_context(self, context: Any) -> None:
        self._treated = Scorer.from_dir(Path(context.artifacts["treated"]))
        self._control = Scorer.from_dir(Path(context.artifacts["control"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        frame = pd.DataFrame(model_input)
        matrix = self._treated.matrix(frame)
        return np.asarray(self._treated.predict_proba(matrix) - self._control.predict_proba(matrix))
