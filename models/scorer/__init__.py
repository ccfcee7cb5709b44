"""The fast path from a feature matrix to calibrated probabilities, shared by training (which builds it),
the registry (which stores and loads it), batch scoring and the service: numpy and LightGBM (or the trees
compiled by lleaves), calibration as plain numbers, and the reason codes of a score."""

from models.scorer.calibration import Calibrator, fit_calibrator
from models.scorer.compiled import Predict, compile_booster
from models.scorer.scorer import BOOSTER_FILE, META_FILE, SMALL_BATCH, Scorer

__all__ = [
    "BOOSTER_FILE",
    "META_FILE",
    "SMALL_BATCH",
    "Calibrator",
    "Predict",
    "Scorer",
    "compile_booster",
    "fit_calibrator",
]
