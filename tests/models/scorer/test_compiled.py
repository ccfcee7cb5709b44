"""Trees compiled by lleaves give LightGBM's raw scores exactly; without lleaves only the speed changes."""

from __future__ import annotations

import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.estimators import TrainingResult, train
from models.scorer import compile_booster
from models.scorer.scorer import SMALL_BATCH

# llvmlite < 0.45, which lleaves needs, has no wheels for Python 3.14 (see models.scorer.compiled)
HAS_LLEAVES = sys.version_info < (3, 14)


@pytest.fixture
def trained(churn: pd.DataFrame) -> TrainingResult:
    return train(churn, "churn")


def _awkward_booster() -> tuple[lgb.Booster, np.ndarray]:
    """Missing values, a categorical column and negative zeros: where a compiler could disagree."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 6))
    x[:, 5] = rng.integers(0, 12, len(x))
    x[rng.random(x.shape) < 0.15] = np.nan
    y = (
        np.nan_to_num(x[:, 0]) + np.isnan(x[:, 1]) + (x[:, 5] % 3 == 0) + rng.normal(size=len(x)) > 1
    ).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "min_data_per_group": 5},
        lgb.Dataset(x, y, categorical_feature=[5]),
        num_boost_round=80,  # more than lleaves' default block of 34 trees (see models.scorer.compiled)
    )
    test = rng.normal(size=(3000, 6))
    test[:, 5] = rng.integers(-1, 15, len(test))  # unseen and negative categories too
    test[rng.random(test.shape) < 0.15] = np.nan
    test[:50, 0] = -0.0
    return booster, test


@pytest.mark.skipif(not HAS_LLEAVES, reason="no llvmlite wheels for this Python")
def test_compiled_trees_give_lightgbms_raw_scores_exactly() -> None:
    booster, test = _awkward_booster()
    predict = compile_booster(booster)
    assert predict is not None
    np.testing.assert_array_equal(predict(test, 2), booster.predict(test, raw_score=True))
    np.testing.assert_array_equal(
        predict(test.astype(np.float32), 1), booster.predict(test.astype(np.float32), raw_score=True)
    )


@pytest.mark.skipif(not HAS_LLEAVES, reason="no llvmlite wheels for this Python")
def test_a_compiled_scorer_gives_the_same_probabilities(trained: TrainingResult) -> None:
    plain = trained.scorer()
    fast = trained.scorer()
    assert fast.compile()
    matrix = fast.matrix(trained.validation)
    assert len(matrix) >= SMALL_BATCH  # the compiled path is taken
    np.testing.assert_array_equal(fast.predict_proba(matrix), plain.predict_proba(matrix))
    np.testing.assert_array_equal(fast.margin(matrix[:3]), plain.margin(matrix[:3]))  # LightGBM below the cut


def test_without_lleaves_the_scorer_keeps_lightgbm(
    trained: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import lleaves -> ImportError
    scorer = trained.scorer()
    assert compile_booster(scorer.booster) is None
    assert not scorer.compile()
    matrix = scorer.matrix(trained.validation)
    np.testing.assert_allclose(
        scorer.predict_proba(matrix), trained.model.predict_proba(trained.validation)[:, 1], rtol=0, atol=1e-9
    )


def test_multiclass_boosters_are_left_to_lightgbm() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 3))
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1},
        lgb.Dataset(x, rng.integers(0, 3, len(x))),
        num_boost_round=3,
    )
    assert compile_booster(booster) is None
