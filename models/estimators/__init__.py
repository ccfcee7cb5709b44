"""Estimators: scikit-learn style models that learn from frames and predict, with no I/O of their own —
LightGBM with out-of-time training and its baselines, BG/NBD, and the two-model uplift learner."""

from models.estimators.baselines import OfferResponseRateBaseline, RecencyFrequencyBaseline
from models.estimators.bgnbd import BetaGeoNBD, simulate_bgnbd, summarise
from models.estimators.boosted import MAX_ROUNDS, BoostedClassifier, average_boosters
from models.estimators.training import TASKS, Task, TrainingResult, get_task, train
from models.estimators.uplift import TwoModelUplift, ipw_weights

__all__ = [
    "MAX_ROUNDS",
    "TASKS",
    "BetaGeoNBD",
    "BoostedClassifier",
    "OfferResponseRateBaseline",
    "RecencyFrequencyBaseline",
    "Task",
    "TrainingResult",
    "TwoModelUplift",
    "average_boosters",
    "get_task",
    "ipw_weights",
    "simulate_bgnbd",
    "summarise",
    "train",
]
