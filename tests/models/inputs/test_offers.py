"""The offer model's inputs: customer x offer rows, the one code path of training, scoring and the service."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.inputs import PAIR_COLUMNS, OfferInputs, offer_table
from pipelines import FEATURE_NAMES
from tests.models.inputs.conftest import CATALOGUE, IDX, vectors


def test_offer_matrix_is_customer_major_and_pairs_agree() -> None:
    m = vectors(5)
    inputs = OfferInputs(FEATURE_NAMES, CATALOGUE)
    assert inputs.offer_ids == ("GROC2X", "BONUS3K", "INFO", "SBX")
    assert inputs.completable.tolist() == [True, True, False, True]
    full = inputs.matrix(m)
    assert full.shape == (5 * 4, len(inputs.columns))
    rows = [3, 0, 4, 4]
    ids = ["SBX", "GROC2X", "BONUS3K", "SBX"]
    expect = full.reshape(5, 4, -1)[rows, [inputs.offer_ids.index(o) for o in ids]]
    np.testing.assert_array_equal(inputs.pairs(m, rows, ids), expect)
    np.testing.assert_array_equal(inputs.pairs_at(m, rows, inputs.offer_positions(ids)), expect)
    sub = inputs.matrix(m, ["SBX", "GROC2X"]).reshape(5, 2, -1)
    np.testing.assert_array_equal(sub[:, 0], full.reshape(5, 4, -1)[:, 3])
    with pytest.raises(InvalidInput, match="unknown offer"):
        inputs.matrix(m, ["NOPE"])


def test_pair_features_mean_what_they_say() -> None:
    m = vectors(4)
    cols = ["pair_category_share", "pair_p_over_threshold", "pair_kind_completed", "offer_threshold"]
    inputs = OfferInputs(FEATURE_NAMES, CATALOGUE, columns=cols)
    x = inputs.matrix(m).reshape(4, 4, len(cols))
    groceries = m[:, IDX["category_groceries_share_365d"]]
    np.testing.assert_allclose(x[1:, 0, 0], groceries[1:])  # GROC2X: the share in its category
    assert (x[1:, 1, 0] == 1.0).all()  # BONUS3K: any category
    assert np.isnan(x[0, 1, 0])  # a customer without transactions has no share
    # P(amount >= 3000) under a lognormal with the customer's mean and spread
    mean, sd = m[1, IDX["txn_amount_mean_365d"]], m[1, IDX["txn_amount_std_365d"]]
    s2 = math.log1p((sd / mean) ** 2)
    z = (math.log(3000) - (math.log(mean) - s2 / 2)) / math.sqrt(s2)
    assert x[1, 1, 1] == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert x[1, 0, 1] == 1.0  # no threshold
    np.testing.assert_array_equal(x[:, 0, 2], m[:, IDX["offers_completed_multiplier"]])
    np.testing.assert_array_equal(x[:, 3, 2], m[:, IDX["offers_completed_cashback"]])
    assert x[0, 3, 3] == 900.0


def test_a_new_offer_is_scored_from_its_attributes() -> None:
    inputs = OfferInputs(FEATURE_NAMES, CATALOGUE)
    table = offer_table(CATALOGUE).set_index("offer_id")
    assert table.loc["SBX", "offer_attr_reward"] == 5
    assert table.loc["SBX", "offer_attr_channels_social"] == 1
    assert table.loc["GROC2X", "offer_attr_channels_social"] == 0
    assert math.isnan(table.loc["GROC2X", "offer_attr_reward"])
    new = pd.concat(
        [CATALOGUE, CATALOGUE.iloc[[1]].assign(offer_id="BONUS5K", threshold=5000.0, bonus_points=500)],
        ignore_index=True,
    )
    wider = inputs.with_catalogue(new)
    assert wider.columns == inputs.columns
    x = wider.matrix(vectors(2), ["BONUS5K"])
    assert x[0, wider.columns.index("offer_threshold")] == 5000.0
    assert set(PAIR_COLUMNS) <= set(wider.columns)
