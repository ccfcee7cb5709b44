"""Estimators: scikit-learn style models that learn from frames and predict, with no I/O of their own."""

from models.estimators.bgnbd import BetaGeoNBD, simulate_bgnbd, summarise
from models.estimators.uplift import TwoModelUplift, ipw_weights

__all__ = [
    "BetaGeoNBD",
    "TwoModelUplift",
    "ipw_weights",
    "simulate_bgnbd",
    "summarise",
]
