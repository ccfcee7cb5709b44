"""Pair features computed on their own give the pair columns of the offer model's rows."""

from __future__ import annotations

import numpy as np

from models.inputs import PAIR_COLUMNS, OfferInputs, PairFeatures, offer_table
from models.inputs.vectors import index_of
from pipelines import FEATURE_NAMES
from tests.models.inputs.conftest import CATALOGUE, vectors


def test_pair_features_are_the_pair_columns_of_the_offer_rows() -> None:
    m = vectors(5)
    table = offer_table(CATALOGUE)
    features = PairFeatures(table, table["kind"].tolist())
    offers = np.array([3, 0])
    wanted = [PAIR_COLUMNS.index("pair_kind_sent"), PAIR_COLUMNS.index("pair_p_any_match")]
    got = features.compute(m, index_of(FEATURE_NAMES), offers, wanted)
    assert [g.shape for g in got] == [(5, 2), (5, 2)]
    inputs = OfferInputs(FEATURE_NAMES, CATALOGUE, columns=["pair_kind_sent", "pair_p_any_match"])
    rows = inputs.matrix(m, ["SBX", "GROC2X"]).reshape(5, 2, 2)
    np.testing.assert_array_equal(got[0], rows[:, :, 0])
    np.testing.assert_array_equal(got[1], rows[:, :, 1])
