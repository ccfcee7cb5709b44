"""Estimators: scikit-learn style models that learn from frames and predict, with no I/O of their own —
LightGBM with out-of-time training and its baselines, BG/NBD and the churn scorers built on it (BG/NBD
alone, a stack with LightGBM), and the uplift learners (S, T, X, DR, the
response ranking) with the selector that chooses among them by cross-validated Qini."""

from models.estimators.baselines import OfferResponseRateBaseline, RecencyFrequencyBaseline
from models.estimators.bgnbd import BetaGeoNBD, simulate_bgnbd, summarise
from models.estimators.boosted import MAX_ROUNDS, BoostedClassifier, average_boosters
from models.estimators.churn_scorers import BgnbdScorer, StackedScorer, load_scorer
from models.estimators.training import TASKS, Task, TrainingResult, get_task, train
from models.estimators.uplift import TwoModelUplift, ipw_weights
from models.estimators.uplift_base import UpliftLearner
from models.estimators.uplift_meta import DRLearnerUplift, ResponseRanking, SoloModelUplift, XLearnerUplift
from models.estimators.uplift_select import CANDIDATES, LEARNERS, UpliftSelector, make_learner

__all__ = [
    "CANDIDATES",
    "LEARNERS",
    "MAX_ROUNDS",
    "TASKS",
    "BetaGeoNBD",
    "BgnbdScorer",
    "BoostedClassifier",
    "DRLearnerUplift",
    "OfferResponseRateBaseline",
    "RecencyFrequencyBaseline",
    "ResponseRanking",
    "SoloModelUplift",
    "StackedScorer",
    "Task",
    "TrainingResult",
    "TwoModelUplift",
    "UpliftLearner",
    "UpliftSelector",
    "XLearnerUplift",
    "average_boosters",
    "get_task",
    "ipw_weights",
    "load_scorer",
    "make_learner",
    "simulate_bgnbd",
    "summarise",
    "train",
]
