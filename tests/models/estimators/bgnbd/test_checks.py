"""Invalid input to the BG/NBD model is refused with a message naming the field and the row."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from loyalty_core import InvalidInput
from models.estimators.bgnbd import (
    BetaGeoNBD,
    probability_alive,
    simulate_bgnbd,
)
from tests.models.estimators.bgnbd.conftest import PAPER


def history(**columns: list[float]) -> pd.DataFrame:
    base = {"frequency": [1.0, 2.0], "recency": [3.0, 4.0], "T": [10.0, 10.0]}
    return pd.DataFrame({**base, **columns}, index=["c1", "c2"])


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (history().iloc[:0], "no customers"),
        (history().drop(columns="T"), "lacks column\\(s\\) T"),
        (np.ones((3, 2)), "three columns"),
        (history(frequency=[1.0, -1.0]), "frequency is negative at row 'c2'"),
        (history(frequency=[1.5, 2.0]), "frequency is not a whole number .* at row 'c1'"),
        (history(recency=[3.0, 11.0]), "recency is larger than T .* at row 'c2'"),
        (history(recency=[0.0, 4.0]), "recency is 0 although frequency > 0 .* at row 'c1'"),
        (history(frequency=[0.0, 2.0]), "recency is not 0 although frequency is 0 at row 'c1'"),
        (history(T=[10.0, float("nan")]), "T is missing or infinite at row 'c2'"),
        (history(recency=[3.0, -4.0]), "recency is negative"),
    ],
)
def test_fit_rejects_invalid_histories(X: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        BetaGeoNBD().fit(X)  # type: ignore[arg-type]


def test_bad_settings_and_arguments_are_named() -> None:
    with pytest.raises(InvalidInput, match="penalizer"):
        BetaGeoNBD(penalizer=-1).fit(history())
    with pytest.raises(InvalidInput, match="alpha must be positive"):
        probability_alive({**PAPER, "alpha": 0.0}, 1, 2.0, 3.0)
    with pytest.raises(InvalidInput, match="lack b"):
        simulate_bgnbd(10, 52.0, {"r": 1, "alpha": 1, "a": 1}, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BetaGeoNBD().fit(history())
    with pytest.raises(InvalidInput, match="horizon t must be finite and >= 0"):
        model.expected_purchases(-1, 1, 2.0, 3.0)
    with pytest.raises(InvalidInput, match="incompatible shapes"):
        model.churn_score(4, [1, 2], [2.0, 3.0, 4.0], 10.0)


def test_the_checks_name_what_is_wrong_before_any_formula_runs() -> None:
    from models.estimators.bgnbd.checks import check_history, check_horizon, check_params

    assert check_params({"r": 1, "alpha": 2, "a": 3, "b": 4}) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(InvalidInput, match="lack alpha"):
        check_params({"r": 1, "a": 3, "b": 4})
    with pytest.raises(InvalidInput, match="recency is larger than T"):
        check_history([1], [5.0], [4.0])
    with pytest.raises(InvalidInput, match="horizon t must be finite"):
        check_horizon([-1.0])
