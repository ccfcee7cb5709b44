"""The offer model's inputs: rows are (customer, offer) pairs, built for every pair the service or a job asks.

A row holds the customer's features, the offer's attributes (``offer_*`` and ``offer_attr_*`` columns of
``models.inputs.offer_attributes.offer_table``) and the pair features of ``models.inputs.offer_pairs``. A new
offer is scored from its attributes: no retraining when the catalogue changes. The class is built once per
model and catalogue (from the model's input names, read from ``scorer.features``) and maps column indices
then; the matrices are numpy only, which is what the service's latency budget allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.inputs.offer_attributes import PREFIX, offer_table
from models.inputs.offer_pairs import PAIR_COLUMNS, PairFeatures
from models.inputs.vectors import as_matrix, index_of, slice_runs
from pipelines import FEATURE_NAMES


class OfferInputs:
    """The offer model's input matrix for (customer, offer) pairs (see the module docstring).

    ``columns`` are the model's inputs in order (``scorer.features``): customer features, offer columns of
    ``offer_table`` and ``PAIR_COLUMNS``. Default: every customer feature, every offer column of this
    catalogue, every pair column. An offer column the catalogue lacks (an attribute only older offers had)
    is NaN for every offer; a customer feature the vectors lack is an error.
    """

    def __init__(
        self,
        feature_names: Sequence[str] = FEATURE_NAMES,
        catalogue: pd.DataFrame | Iterable[Any] = (),
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.table = offer_table(catalogue)
        self.offer_ids: tuple[str, ...] = tuple(self.table["offer_id"].tolist())
        self.kinds: tuple[str, ...] = tuple(self.table["kind"].tolist())
        self.offer_index = index_of(self.offer_ids)
        offer_names = [c for c in self.table.columns if c not in ("offer_id", "kind")]
        default = (*self.feature_names, *offer_names, *PAIR_COLUMNS)
        self.columns: tuple[str, ...] = tuple(columns) if columns is not None else default
        where = index_of(self.feature_names)
        offer_where = index_of(offer_names)
        unknown = [
            c for c in self.columns if c not in where and c not in PAIR_COLUMNS and not c.startswith(PREFIX)
        ]
        if unknown:
            raise InvalidInput(
                f"the offer model needs feature(s) the customer vectors lack: {', '.join(unknown[:5])}",
                field="features",
            )
        self._cust_pos = np.array([k for k, c in enumerate(self.columns) if c in where], dtype=np.int64)
        self._cust_src = np.array([where[c] for c in self.columns if c in where], dtype=np.int64)
        offer_values = self.table[offer_names].to_numpy(dtype=np.float64, na_value=np.nan)
        self._offer_pos = np.array(
            [k for k, c in enumerate(self.columns) if c not in where and c not in PAIR_COLUMNS],
            dtype=np.int64,
        )
        self._offers = np.column_stack(
            [
                offer_values[:, offer_where[self.columns[k]]]
                if self.columns[k] in offer_where
                else np.full(len(self.table), np.nan)
                for k in self._offer_pos
            ]
            or [np.empty((len(self.table), 0))]
        ).reshape(len(self.table), len(self._offer_pos))
        self._pair_pos = np.array(
            [k for k, c in enumerate(self.columns) if c in PAIR_COLUMNS], dtype=np.int64
        )
        self._pair_src = np.array(
            [PAIR_COLUMNS.index(self.columns[k]) for k in self._pair_pos], dtype=np.int64
        )
        self._where = where
        self._cust_runs = slice_runs(self._cust_pos, self._cust_src)
        self._cust_runs_packed = slice_runs(self._cust_pos, np.arange(len(self._cust_src)))
        self._offer_runs = slice_runs(self._offer_pos, np.arange(len(self._offer_pos)))
        self._pair_features = PairFeatures(self.table, self.kinds)

    @classmethod
    def for_scorer(
        cls,
        scorer: Any,
        catalogue: pd.DataFrame | Iterable[Any],
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> OfferInputs:
        """From a ``models.scorer.Scorer`` (its ``features`` are the columns) and the current catalogue."""
        return cls(feature_names, catalogue, columns=scorer.features)

    def with_catalogue(self, catalogue: pd.DataFrame | Iterable[Any]) -> OfferInputs:
        """The same columns over another catalogue (offers added or changed: no retraining needed)."""
        return OfferInputs(self.feature_names, catalogue, columns=self.columns)

    @property
    def completable(self) -> np.ndarray:
        """Offers that can complete (informational ones never do, so they get no propensity)."""
        return np.array([k != "informational" for k in self.kinds], dtype=bool)

    def offer_positions(self, offer_ids: Sequence[str] | None) -> np.ndarray:
        if offer_ids is None:
            return np.arange(len(self.offer_ids))
        pos = np.array([self.offer_index.get(str(o), -1) for o in offer_ids], dtype=np.int64)
        if (pos < 0).any():
            bad = [str(o) for o, p in zip(offer_ids, pos, strict=True) if p < 0]
            raise InvalidInput(
                f"unknown offer(s) {', '.join(bad[:5])}: not in the catalogue", field="offer_id"
            )
        return pos

    # --- matrices ---------------------------------------------------------------------------------------
    def matrix(self, customer_matrix: np.ndarray, offer_ids: Sequence[str] | None = None) -> np.ndarray:
        """Every customer x every offer of ``offer_ids`` (default: the whole catalogue), customer-major:
        row ``i * len(offer_ids) + j`` is customer ``i`` with offer ``j``. float64, C-ordered."""
        m = as_matrix(customer_matrix, len(self.feature_names))
        offers = self.offer_positions(offer_ids)
        n, k = len(m), len(offers)
        out = np.empty((n, k, len(self.columns)), dtype=np.float64)
        for d, s, length in self._cust_runs:
            out[:, :, d : d + length] = m[:, None, s : s + length]
        chosen = self._offers[offers]
        for d, s, length in self._offer_runs:
            out[:, :, d : d + length] = chosen[None, :, s : s + length]
        for pos, values in zip(
            self._pair_pos, self._pair_features.compute(m, self._where, offers, self._pair_src), strict=True
        ):
            out[:, :, pos] = values
        return out.reshape(n * k, len(self.columns))

    def pairs(
        self, customer_matrix: np.ndarray, rows: Sequence[int] | np.ndarray, offer_ids: Sequence[str]
    ) -> np.ndarray:
        """One input row per pair ``(customer_matrix[rows[k]], offer_ids[k])``: training frames, or a
        pruned candidate list. float64, C-ordered."""
        return self.pairs_at(customer_matrix, rows, self.offer_positions(offer_ids))

    def pairs_at(
        self, customer_matrix: np.ndarray, rows: Sequence[int] | np.ndarray, positions: np.ndarray
    ) -> np.ndarray:
        """As ``pairs`` with offers given by position in ``offer_ids`` (no id lookups: the batch path)."""
        m = as_matrix(customer_matrix, len(self.feature_names))
        r = np.asarray(rows, dtype=np.int64)
        offers = np.asarray(positions, dtype=np.int64)
        if len(r) != len(offers):
            raise InvalidInput("rows and offers must have the same length", field="offer_id")
        out = np.empty((len(r), len(self.columns)), dtype=np.float64)
        # gather only the customer columns the model reads (a row per pair: the wide vector would cost
        # ~10x the memory traffic), then place them
        picked = m[:, self._cust_src][r]
        for d, s, length in self._cust_runs_packed:
            out[:, d : d + length] = picked[:, s : s + length]
        chosen = self._offers[offers]
        for d, s, length in self._offer_runs:
            out[:, d : d + length] = chosen[:, s : s + length]
        if len(self._pair_pos):
            # Pair features per customer x offer of the catalogue, then picked per pair: a few
            # (customers, offers) array operations instead of per-pair gathers of customer columns.
            uniq, inverse = np.unique(r, return_inverse=True)
            every = np.arange(len(self.offer_ids))
            for pos, values in zip(
                self._pair_pos,
                self._pair_features.compute(m[uniq], self._where, every, self._pair_src),
                strict=True,
            ):
                out[:, pos] = values[inverse, offers]
        return out
