"""The customer-vector helpers both model inputs share."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_core import InvalidInput
from models.inputs.vectors import as_matrix, column, index_of, slice_runs


def test_slice_runs_merge_consecutive_positions() -> None:
    runs = slice_runs(np.array([0, 1, 2, 5, 6, 9]), np.array([3, 4, 5, 0, 1, 1]))
    assert runs == [(0, 3, 3), (5, 0, 2), (9, 1, 1)]
    assert slice_runs(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == []


def test_one_vector_is_a_matrix_of_one_row_and_a_wrong_width_is_refused() -> None:
    assert as_matrix(np.arange(3.0), 3).shape == (1, 3)
    with pytest.raises(InvalidInput, match="must have 4 values"):
        as_matrix(np.zeros((2, 3)), 4)


def test_a_column_the_vector_lacks_reads_as_missing() -> None:
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    where = index_of(["a", "b"])
    np.testing.assert_array_equal(column(m, where, "b"), [2.0, 4.0])
    assert np.isnan(column(m, where, "c")).all()
