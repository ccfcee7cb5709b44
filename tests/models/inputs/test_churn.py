"""The churn model's inputs from feature vectors: the features plus BG/NBD columns derived from the vector."""

from __future__ import annotations

import numpy as np
import pytest

from loyalty_core import InvalidInput
from models.estimators.bgnbd import conditional_expected_purchases, probability_alive, probability_no_purchase
from models.inputs import BGNBD_COLUMNS, BgnbdParams, ChurnInputs, bgnbd_history
from pipelines import FEATURE_NAMES
from tests.models.inputs.conftest import IDX, vectors

PARAMS = BgnbdParams(r=0.8, alpha=2.0, a=0.6, b=3.0, horizon_days=90)


def test_bgnbd_history_is_read_from_the_vector() -> None:
    m = np.full((2, len(FEATURE_NAMES)), np.nan)
    m[0, [IDX["txn_count_365d"], IDX["days_since_last_txn"], IDX["mean_gap_days_365d"]]] = [5, 2.0, 10.0]
    m[1, IDX["txn_count_365d"]] = 0
    h = bgnbd_history(m)
    # first transaction of the year 2 + 4 x 10 = 42 days back: T = 6 weeks, recency 40/7 weeks, 4 repeats
    assert h[0].tolist() == pytest.approx([4, 40 / 7, 6])
    assert np.isnan(h[1]).all()


def test_churn_inputs_add_bgnbd_columns_computed_with_the_models_parameters() -> None:
    m = vectors()
    inputs = ChurnInputs(FEATURE_NAMES, bgnbd=PARAMS)
    assert inputs.columns == (*FEATURE_NAMES, *BGNBD_COLUMNS)
    x = inputs.matrix(m)
    np.testing.assert_array_equal(x[:, : len(FEATURE_NAMES)], m)
    h = bgnbd_history(m)
    t = 90 / 7
    ok = ~np.isnan(h).any(axis=1)
    p = PARAMS.params
    np.testing.assert_allclose(x[ok, -3], probability_alive(p, *h[ok].T))
    np.testing.assert_allclose(x[ok, -2], conditional_expected_purchases(p, t, *h[ok].T))
    np.testing.assert_allclose(x[ok, -1], probability_no_purchase(p, t, *h[ok].T))
    assert np.isnan(x[~ok, -3:]).all()
    # the model's own column order is followed, whatever it is
    picked = ChurnInputs(FEATURE_NAMES, columns=["bgnbd_p_no_txn", "tenure_days"], bgnbd=PARAMS).matrix(m)
    np.testing.assert_array_equal(picked[:, 1], m[:, IDX["tenure_days"]])
    np.testing.assert_array_equal(picked[:, 0], x[:, -1])


def test_churn_inputs_refuse_what_they_cannot_build() -> None:
    with pytest.raises(InvalidInput, match="lack: not_a_feature"):
        ChurnInputs(FEATURE_NAMES, columns=["not_a_feature"])
    with pytest.raises(InvalidInput, match="BG/NBD"):
        ChurnInputs(FEATURE_NAMES, columns=["bgnbd_p_alive"])
    with pytest.raises(InvalidInput, match="must have 123 values"):
        ChurnInputs(FEATURE_NAMES).matrix(np.zeros((2, 5)))
    assert BgnbdParams.from_dict(PARAMS.as_dict()) == PARAMS
