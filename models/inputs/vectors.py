"""Customer feature vectors as numpy matrices: the checks and column lookups both model inputs share.

A vector is a row of the feature snapshot / online table in the order of its feature names. The churn and
offer inputs read columns of it by name, and copy runs of them into their own order; doing both here once
keeps the two builders from drifting apart on what a malformed vector is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from loyalty_core import InvalidInput


def index_of(names: Sequence[str]) -> dict[str, int]:
    """Each name's position: column lookups by name without a linear search per call."""
    return {n: i for i, n in enumerate(names)}


def column(matrix: np.ndarray, where: Mapping[str, int], name: str) -> np.ndarray:
    """A customer column by name; NaN when the vector has no such feature (another catalogue)."""
    j = where.get(name)
    return matrix[:, j] if j is not None else np.full(len(matrix), np.nan)


def as_matrix(customer_matrix: np.ndarray, width: int) -> np.ndarray:
    """The vectors as a 2-D float64 matrix of ``width`` columns (one vector may come alone, as 1-D)."""
    m = np.asarray(customer_matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2 or m.shape[1] != width:
        raise InvalidInput(
            f"customer feature vectors must have {width} values (the feature catalogue), got shape {m.shape}",
            field="features",
        )
    return m


def slice_runs(dest: np.ndarray, src: np.ndarray) -> list[tuple[int, int, int]]:
    """Stretches ``(dest_start, src_start, length)`` where both positions step by one: copied as slices,
    which is an order of magnitude faster than fancy indexing on wide matrices."""
    runs: list[tuple[int, int, int]] = []
    for d, s in zip(dest.tolist(), src.tolist(), strict=True):
        if runs and runs[-1][0] + runs[-1][2] == d and runs[-1][1] + runs[-1][2] == s:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((d, s, 1))
    return runs
