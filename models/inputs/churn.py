"""The churn model's inputs: a customer's features plus three BG/NBD columns computed from the vector itself.

The BG/NBD columns (``BGNBD_COLUMNS``) are derived from the feature vector (see ``bgnbd_history``) with the
BG/NBD parameters the model was trained with. Deriving them from the vector, rather than from the raw
transactions, is what lets the service score a customer from the online table alone; the parameters were
fitted only on facts before each training cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.estimators.bgnbd.checks import PARAM_NAMES
from models.estimators.bgnbd.formulas import customer_outlook
from models.inputs.vectors import as_matrix, column, index_of
from pipelines import FEATURE_NAMES

BGNBD_UNIT_DAYS = 7.0  # weeks, as in the paper; only the parameters' scale depends on it
BGNBD_COLUMNS: tuple[str, ...] = ("bgnbd_p_alive", "bgnbd_expected_txns", "bgnbd_p_no_txn")


def bgnbd_history(customer_matrix: np.ndarray, feature_names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """(n, 3) BG/NBD history (frequency, recency, T) in weeks over the last 365 days; NaN rows = no history.

    Read from the vector, so only the 365-day window is known: the first transaction in it is
    ``days_since_last_txn + mean_gap_days_365d * (txn_count_365d - 1)`` days back, which makes
    ``T = that``, ``recency = T - days_since_last_txn`` and ``frequency = txn_count_365d - 1``. Transactions
    count as purchase occasions (the vector has no distinct-day count over the year). A customer without a
    transaction in the year has no row: BG/NBD says nothing about them, LightGBM sees NaN.
    """
    where = index_of(feature_names)
    m = as_matrix(customer_matrix, len(feature_names))
    count = column(m, where, "txn_count_365d")
    last = column(m, where, "days_since_last_txn")
    gap = column(m, where, "mean_gap_days_365d")
    span = np.where(count >= 2, np.nan_to_num(gap, nan=0.0) * (count - 1), 0.0)
    ok = (count >= 1) & np.isfinite(last) & (last >= 0)
    age = last + span
    out = np.full((len(m), 3), np.nan)
    # repeats all at one instant (span 0) carry no rate information: the model needs recency > 0 for them
    out[ok, 0] = np.where(span[ok] > 0, count[ok] - 1, 0)
    out[ok, 1] = np.minimum(span[ok], age[ok]) / BGNBD_UNIT_DAYS
    out[ok, 2] = age[ok] / BGNBD_UNIT_DAYS
    # T = 0 (a first transaction exactly at the cutoff) has no exposure; the model needs T > 0
    out[ok & (age <= 0)] = np.nan
    return out


@dataclass(frozen=True, slots=True)
class BgnbdParams:
    """The four fitted numbers and the horizon the churn columns look over (kept in the scorer's meta)."""

    r: float
    alpha: float
    a: float
    b: float
    horizon_days: int

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b, "horizon_days": self.horizon_days}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> BgnbdParams:
        try:
            r, alpha, a, b = (float(doc[p]) for p in PARAM_NAMES)
            return cls(r=r, alpha=alpha, a=a, b=b, horizon_days=int(doc["horizon_days"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"BG/NBD parameters are incomplete: {doc!r}", field="bgnbd") from exc

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def bgnbd_columns(history: np.ndarray, params: BgnbdParams) -> np.ndarray:
    """(n, 3): P(alive), expected transactions over the horizon, P(none over it); NaN without history."""
    out = np.full((len(history), 3), np.nan)
    ok = ~np.isnan(history).any(axis=1)
    if not ok.any():
        return out
    t = params.horizon_days / BGNBD_UNIT_DAYS
    x, tx, age = history[ok, 0], history[ok, 1], history[ok, 2]
    alive, expected, quiet = customer_outlook(params.params, t, x, tx, age)
    out[ok, 0] = alive
    out[ok, 1] = expected
    out[ok, 2] = quiet
    return out


class ChurnInputs:
    """The churn model's input matrix from customer feature vectors (see the module docstring).

    ``columns`` are the model's inputs in order (``scorer.features``); each is a customer feature or one of
    ``BGNBD_COLUMNS`` (those need ``bgnbd``). Default: every customer feature, then the BG/NBD columns when
    ``bgnbd`` is given.
    """

    def __init__(
        self,
        feature_names: Sequence[str] = FEATURE_NAMES,
        *,
        columns: Sequence[str] | None = None,
        bgnbd: BgnbdParams | None = None,
    ) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.bgnbd = bgnbd
        default = (*self.feature_names, *(BGNBD_COLUMNS if bgnbd is not None else ()))
        self.columns: tuple[str, ...] = tuple(columns) if columns is not None else default
        where = index_of(self.feature_names)
        unknown = [c for c in self.columns if c not in where and c not in BGNBD_COLUMNS]
        if unknown:
            raise InvalidInput(
                f"the churn model needs feature(s) the customer vectors lack: {', '.join(unknown[:5])}",
                field="features",
            )
        if bgnbd is None and any(c in BGNBD_COLUMNS for c in self.columns):
            raise InvalidInput("the churn model reads BG/NBD columns but no BG/NBD parameters were given")
        self._source = np.array([where.get(c, -1) for c in self.columns], dtype=np.int64)
        self._direct = np.flatnonzero(self._source >= 0)
        self._derived = [
            (k, BGNBD_COLUMNS.index(c)) for k, c in enumerate(self.columns) if c in BGNBD_COLUMNS
        ]

    @classmethod
    def for_scorer(cls, scorer: Any, feature_names: Sequence[str] = FEATURE_NAMES) -> ChurnInputs:
        """From a ``models.scorer.Scorer`` (its ``features``; BG/NBD parameters from ``meta["bgnbd"]``)."""
        doc = scorer.meta.get("bgnbd")
        return cls(
            feature_names,
            columns=scorer.features,
            bgnbd=BgnbdParams.from_dict(doc) if doc else None,
        )

    def matrix(self, customer_matrix: np.ndarray) -> np.ndarray:
        """(n, len(columns)) float64, C-ordered: what ``Scorer.predict_proba`` takes."""
        m = as_matrix(customer_matrix, len(self.feature_names))
        out = np.empty((len(m), len(self.columns)), dtype=np.float64)
        out[:, self._direct] = m[:, self._source[self._direct]]
        if self._derived:
            assert self.bgnbd is not None
            extra = bgnbd_columns(bgnbd_history(m, self.feature_names), self.bgnbd)
            for k, j in self._derived:
                out[:, k] = extra[:, j]
        return out

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The same columns as a DataFrame from a feature frame (training): one code path for both."""
        missing = [f for f in self.feature_names if f not in features.columns]
        if missing:
            raise InvalidInput(f"features lack column(s) {', '.join(missing[:5])}", field="features")
        m = np.ascontiguousarray(
            features[list(self.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        return pd.DataFrame(self.matrix(m), columns=list(self.columns), index=features.index)
