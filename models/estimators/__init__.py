"""Estimators: LightGBM's classifier with out-of-time training, its baselines and calibration (pure: values
and frames in, fitted models out)."""

from models.estimators.baselines import OfferResponseRateBaseline, RecencyFrequencyBaseline
from models.estimators.boosted import MAX_ROUNDS, BoostedClassifier, average_boosters
from models.estimators.calibration import Calibrator, fit_calibrator
from models.estimators.training import TASKS, Task, TrainingResult, get_task, train

__all__ = [
    "MAX_ROUNDS",
    "TASKS",
    "BoostedClassifier",
    "Calibrator",
    "OfferResponseRateBaseline",
    "RecencyFrequencyBaseline",
    "Task",
    "TrainingResult",
    "average_boosters",
    "fit_calibrator",
    "get_task",
    "train",
]
