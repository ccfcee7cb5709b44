"""Checks on BG/NBD inputs (parameters, customer histories, horizons), with messages that name the field
and the first bad row: a wrongly summarised history stops with a message a data scientist can act on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from loyalty_core import InvalidInput

PARAM_NAMES: Final = ("r", "alpha", "a", "b")
RFM_COLUMNS: Final = ("frequency", "recency", "T")
Floats = NDArray[np.float64]
Theta = tuple[float, float, float, float]


def check_params(params: Mapping[str, float]) -> Theta:
    missing = [p for p in PARAM_NAMES if p not in params]
    if missing:
        raise InvalidInput(f"BG/NBD parameters lack {', '.join(missing)}", field=missing[0])
    values = tuple(float(params[p]) for p in PARAM_NAMES)
    for name, value in zip(PARAM_NAMES, values, strict=True):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(
                f"BG/NBD parameter {name} must be positive and finite, got {value!r}", field=name
            )
    return as_theta(values)


def as_theta(values: Any) -> Theta:
    r, alpha, a, b = (float(v) for v in values)
    return r, alpha, a, b


def as_floats(values: ArrayLike, name: str) -> Floats:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric ({exc})", field=name) from exc
    return arr


def _first(mask: NDArray[np.bool_], labels: pd.Index | None) -> Any:
    pos = int(np.argmax(mask.ravel()))
    return labels[pos] if labels is not None else pos


def check_history(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, labels: pd.Index | None = None
) -> tuple[Floats, Floats, Floats]:
    """Broadcast and validate customer histories; the message names the field and the first bad row."""
    x, tx, age = (as_floats(v, n) for v, n in zip((frequency, recency, T), RFM_COLUMNS, strict=True))
    try:
        x, tx, age = np.broadcast_arrays(x, tx, age)
    except ValueError as exc:
        raise InvalidInput(
            f"frequency, recency and T have incompatible shapes ({exc})", field="frequency"
        ) from exc

    def fail(mask: NDArray[np.bool_], field: str, why: str) -> None:
        if mask.any():
            row = _first(mask, labels)
            raise InvalidInput(
                f"{field} {why} at row {row!r} ({int(mask.sum())} row(s) in all)", field=field, row=row
            )

    for arr, name in ((x, "frequency"), (tx, "recency"), (age, "T")):
        fail(~np.isfinite(arr), name, "is missing or infinite")
        fail(arr < 0, name, "is negative")
    fail(x != np.floor(x), "frequency", "is not a whole number of repeat purchases")
    fail(tx > age * (1 + 1e-12), "recency", "is larger than T (a purchase after the cutoff)")
    fail((x > 0) & (tx == 0), "recency", "is 0 although frequency > 0 (a repeat purchase needs recency > 0)")
    fail((x == 0) & (tx != 0), "recency", "is not 0 although frequency is 0")
    return x, tx, age


def check_horizon(t: ArrayLike) -> Floats:
    horizon = as_floats(t, "t")
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise InvalidInput("the horizon t must be finite and >= 0", field="t")
    return horizon


def history_from_X(X: pd.DataFrame | ArrayLike) -> tuple[Floats, Floats, Floats]:
    if isinstance(X, pd.DataFrame):
        missing = [c for c in RFM_COLUMNS if c not in X.columns]
        if missing:
            raise InvalidInput(
                f"X lacks column(s) {', '.join(missing)}; expected frequency, recency, T", field=missing[0]
            )
        x, tx, age = check_history(
            X["frequency"].to_numpy(), X["recency"].to_numpy(), X["T"].to_numpy(), labels=X.index
        )
    else:
        arr = as_floats(X, "X")
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InvalidInput(
                f"X must have three columns (frequency, recency, T), got shape {arr.shape}", field="X"
            )
        x, tx, age = check_history(arr[:, 0], arr[:, 1], arr[:, 2])
    if x.size == 0:
        raise InvalidInput("X has no customers: nothing to fit", field="X")
    return x, tx, age
