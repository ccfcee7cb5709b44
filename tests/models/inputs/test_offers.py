"""Model inputs from feature vectors: the one code path shared by training, batch scoring and the service."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.assemble import (
    BGNBD_COLUMNS,
    PAIR_COLUMNS,
    BgnbdParams,
    ChurnInputs,
    OfferInputs,
    bgnbd_history,
    catalogue_frame,
    offer_table,
)
from models.bgnbd import conditional_expected_purchases, probability_alive, probability_no_purchase
from pipelines import CATEGORIES, FEATURE_NAMES

IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
PARAMS = BgnbdParams(r=0.8, alpha=2.0, a=0.6, b=3.0, horizon_days=90)
CATALOGUE = pd.DataFrame(
    {
        "offer_id": ["GROC2X", "BONUS3K", "INFO", "SBX"],
        "kind": ["multiplier", "bonus_points", "informational", "cashback"],
        "multiplier": [2.0, 1.0, 1.0, 1.0],
        "bonus_points": [0, 300, 0, 0],
        "threshold": [None, 3000.0, None, 900.0],
        "categories": [["groceries"], None, None, None],
        "txn_types": [["purchase"], ["purchase"], None, None],
        "channels": [None, ["app", "web"], None, ["web", "social"]],
        "duration_days": [14, 7, 7, 10],
        "cost": [60.0, 300.0, 0.0, 450.0],
        "value": [150.0, 650.0, 0.0, 900.0],
        "attributes": [None, None, None, {"offer_type": "bogo", "reward": 5, "channels": ["web", "social"]}],
    }
)


def vectors(n: int = 6, seed: int = 0) -> np.ndarray:
    """Plausible customer vectors: integer counts where the catalogue has them, some missing values."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0, 50, (n, len(FEATURE_NAMES)))
    m[:, IDX["txn_count_365d"]] = rng.integers(0, 200, n)
    m[:, IDX["days_since_last_txn"]] = rng.uniform(0.5, 60, n)
    m[:, IDX["mean_gap_days_365d"]] = rng.uniform(0.5, 5, n)
    m[:, IDX["preferred_channel"]] = rng.integers(-1, 4, n)
    m[:, IDX["txn_amount_mean_365d"]] = rng.uniform(500, 4000, n)
    m[:, IDX["txn_amount_std_365d"]] = rng.uniform(100, 3000, n)
    shares = rng.dirichlet(np.ones(len(CATEGORIES)), n)
    for k, c in enumerate(CATEGORIES):
        m[:, IDX[f"category_{c}_share_365d"]] = shares[:, k]
    m[0, IDX["txn_count_365d"]] = 0  # never transacted in the year
    m[0, IDX["days_since_last_txn"]] = np.nan
    return m


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


def test_catalogue_from_records_and_frames() -> None:
    class Row:
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    rows = [
        Row(id="A", kind="cashback", threshold=100, duration_days=7),
        {"id": "B", "kind": "informational"},
    ]
    frame = catalogue_frame(rows)
    assert frame["offer_id"].tolist() == ["A", "B"]
    assert catalogue_frame(pd.DataFrame({"id": ["X"], "kind": ["multiplier"]}))["offer_id"].tolist() == ["X"]
    with pytest.raises(InvalidInput, match="twice"):
        catalogue_frame(pd.DataFrame({"offer_id": ["X", "X"], "kind": ["multiplier"] * 2}))
