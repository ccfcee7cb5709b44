"""Baselines trained and judged in the same run as LightGBM, on the same frame, so "better" means something.

- ``RecencyFrequencyBaseline`` (churn): the marketer's rule of thumb made into probabilities. Customers
  are put in a grid of recency x frequency quantile bins (learnt on the training rows); each cell predicts
  its training churn rate, shrunk towards the overall rate when the cell is small.
- ``OfferResponseRateBaseline`` (offers): each offer's historical response rate, shrunk towards the
  overall rate; an offer never seen in training gets the overall rate.

Both follow the sklearn estimator contract (hyper-parameters in ``__init__``, learning in ``fit``, learnt
state ending in ``_``) and take the same DataFrame the LightGBM model takes, using only their columns.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.inputs import check_binary, require_columns


def _shrunk_rate(positives: np.ndarray, counts: np.ndarray, prior: float, strength: float) -> np.ndarray:
    """Beta-binomial posterior mean: small groups lean on the overall rate instead of their own noise."""
    return (positives + strength * prior) / (counts + strength)


def _two_columns(proba: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - proba, proba])


class RecencyFrequencyBaseline(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Churn rate per recency x frequency cell (quantile bins from the training rows)."""

    def __init__(
        self,
        *,
        recency: str = "days_since_last_txn",
        frequency: str = "txn_count_90d",
        n_bins: int = 5,
        prior_strength: float = 20.0,
    ) -> None:
        self.recency = recency
        self.frequency = frequency
        self.n_bins = n_bins
        self.prior_strength = prior_strength

    def _cells(self, X: pd.DataFrame) -> np.ndarray:
        require_columns(X, [self.recency, self.frequency], what="baseline's input")
        cells = np.zeros(len(X), dtype=np.int64)
        for column, edges in ((self.recency, self.recency_edges_), (self.frequency, self.frequency_edges_)):
            values = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
            # bins 0..len(edges); missing values (e.g. never transacted) get a bin of their own
            binned = np.where(np.isnan(values), len(edges) + 1, np.searchsorted(edges, values, side="right"))
            cells = cells * (len(edges) + 2) + binned
        return cells

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        require_columns(X, [self.recency, self.frequency], what="baseline's input")
        target = check_binary(y)
        if self.n_bins < 1:
            raise InvalidInput("n_bins must be at least 1", field="n_bins")
        quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        edges = []
        for column in (self.recency, self.frequency):
            values = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
            finite = values[~np.isnan(values)]
            edges.append(np.unique(np.quantile(finite, quantiles)) if finite.size else np.empty(0))
        self.recency_edges_, self.frequency_edges_ = edges
        cells = self._cells(X)
        self.prior_ = float(target.mean())
        keys, inverse = np.unique(cells, return_inverse=True)
        counts = np.bincount(inverse).astype(np.float64)
        positives = np.bincount(inverse, weights=target).astype(np.float64)
        self.cell_rate_ = dict(
            zip(
                keys.tolist(),
                _shrunk_rate(positives, counts, self.prior_, self.prior_strength).tolist(),
                strict=True,
            )
        )
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "cell_rate_")
        cells = self._cells(X)
        proba = np.array([self.cell_rate_.get(c, self.prior_) for c in cells.tolist()], dtype=np.float64)
        return _two_columns(proba)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int8)


class OfferResponseRateBaseline(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Each offer's historical response rate (shrunk to the overall rate); new offers get the overall rate."""

    def __init__(self, *, offer_column: str = "offer_id", prior_strength: float = 20.0) -> None:
        self.offer_column = offer_column
        self.prior_strength = prior_strength

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        require_columns(X, [self.offer_column], what="baseline's input")
        target = check_binary(y)
        self.prior_ = float(target.mean())
        grouped = pd.DataFrame({"offer": X[self.offer_column].astype("string").to_numpy(), "y": target})
        stats = grouped.groupby("offer", observed=True)["y"].agg(["sum", "count"])
        rates = _shrunk_rate(
            stats["sum"].to_numpy(np.float64),
            stats["count"].to_numpy(np.float64),
            self.prior_,
            self.prior_strength,
        )
        self.offer_rate_ = dict(zip(stats.index.astype(str).tolist(), rates.tolist(), strict=True))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "offer_rate_")
        require_columns(X, [self.offer_column], what="baseline's input")
        offers = X[self.offer_column].astype("string").fillna("").tolist()
        proba = np.array([self.offer_rate_.get(o, self.prior_) for o in offers], dtype=np.float64)
        return _two_columns(proba)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int8)
