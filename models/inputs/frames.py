"""The one shape every model here trains on, checked once: keys, a cutoff, feature columns and a binary label.

A training frame is what ``pipelines`` produce after joining features and labels: one row per key (e.g.
``customer_id`` + ``as_of``, or ``customer_id`` + ``offer_id`` + ``as_of`` for offers), numeric feature
columns, and a 0/1 label. The cutoff column ``as_of`` is what makes validation honest: models are fitted on
earlier cutoffs and judged on a later one, as they are used (trained on the past, scoring the future).

Checking here, with errors that name the column and the row, means a wrongly joined frame stops training
with a message a data scientist can act on, instead of LightGBM quietly learning from a string column or a
leaked label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

CUTOFF = "as_of"
CUSTOMER_KEYS: tuple[str, ...] = ("customer_id", CUTOFF)
OFFER_KEYS: tuple[str, ...] = ("customer_id", "offer_id", CUTOFF)


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """Which columns of a frame are keys, the cutoff, the label and the features.

    ``features=None`` takes every numeric or boolean column that is not a key, the cutoff, the label or in
    ``exclude``. Pass ``features`` explicitly when the frame carries other label columns: an unlisted label
    would otherwise be learnt as a feature.
    """

    label: str
    keys: tuple[str, ...] = CUSTOMER_KEYS
    cutoff: str = CUTOFF
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()

    def feature_columns(self, frame: pd.DataFrame) -> list[str]:
        if self.features is not None:
            return list(self.features)
        reserved = {*self.keys, self.cutoff, self.label, *self.exclude}
        return [
            str(c)
            for c in frame.columns
            if c not in reserved
            and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]

    def validate(self, frame: pd.DataFrame) -> list[str]:
        """Raise ``InvalidInput`` unless the frame can be trained on; return its feature columns."""
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"a training frame must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.empty:
            raise InvalidInput("the training frame has no rows")
        require_columns(frame, [*self.keys, self.cutoff, self.label], what="training frame")
        features = self.feature_columns(frame)
        if not features:
            raise InvalidInput("the training frame has no numeric feature columns", field="features")
        require_columns(frame, features, what="training frame")
        check_features(frame, features)
        check_binary(frame[self.label], self.label)
        if frame[self.cutoff].isna().any():
            row = int(np.flatnonzero(frame[self.cutoff].isna().to_numpy())[0])
            raise InvalidInput(f"column {self.cutoff!r} is empty at row {row}", column=self.cutoff, row=row)
        return features


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the {what} lacks column(s) {', '.join(map(repr, missing))}", column=missing[0], missing=missing
        )


def check_features(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Features must be numbers (NaN means missing, which LightGBM handles); never text or infinities."""
    for c in features:
        col = frame[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise InvalidInput(f"feature column {c!r} is not numeric (dtype {col.dtype})", column=c)
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidInput(f"feature column {c!r} is infinite at row {row}", column=c, row=row)


def check_binary(label: pd.Series | np.ndarray | Sequence[Any], name: str = "label") -> np.ndarray:
    """The label as an int8 array of 0/1, or ``InvalidInput`` naming the first row that is not 0 or 1."""
    series = pd.Series(label) if not isinstance(label, pd.Series) else label
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = series.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise InvalidInput(
            f"label column {name!r} must be 0 or 1, got {value!r} at row {row}", column=name, row=row
        )
    return values.astype(np.int8)


def feature_matrix(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The features as one C-ordered float64 matrix, NaN for missing: what LightGBM and the scorer take."""
    require_columns(frame, features, what="frame")
    return np.ascontiguousarray(frame[list(features)].to_numpy(dtype=np.float64, na_value=np.nan))


def cutoffs(frame: pd.DataFrame, cutoff: str = CUTOFF) -> list[Any]:
    return sorted(pd.unique(frame[cutoff]))


def split_out_of_time(
    frame: pd.DataFrame, cutoff: str = CUTOFF, *, n_validation: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier cutoffs for training, the latest ``n_validation`` for validation (out-of-time)."""
    times = cutoffs(frame, cutoff)
    if len(times) <= n_validation:
        raise InvalidInput(
            f"out-of-time validation needs more than {n_validation} distinct {cutoff!r} value(s); "
            f"the frame has {len(times)}: build features for more cutoffs",
            column=cutoff,
        )
    first_val = times[-n_validation]
    is_val = (frame[cutoff] >= first_val).to_numpy()
    return frame.loc[~is_val].reset_index(drop=True), frame.loc[is_val].reset_index(drop=True)


def fingerprint(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A SHA-256 of the given columns' names and values, row order included: the data version of a run."""
    digest = hashlib.sha256("\x1f".join(columns).encode())
    hashed = pd.util.hash_pandas_object(frame[list(columns)], index=False).to_numpy()
    digest.update(np.ascontiguousarray(hashed).tobytes())
    return digest.hexdigest()


def describe_cutoff(value: Any) -> str:
    """A cutoff as ISO text for params, tags and the model card."""
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
