"""The Spark engine runs the same feature function per bucket of customers and gives the same frame."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from loyalty_core import ConfigurationError
from pipelines.features.compute import compute_features
from pipelines.features.extract import extract
from pipelines.features.frames import LedgerFrames
from tests.pipelines.conftest import CUTOFF, RULES, random_frames

# pyspark 4.x warns about pandas 3 at every conversion; those warnings are pyspark's, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pipelines.features.spark_engine import spark_session

    session = spark_session("loyalty-features-test")
    yield session
    session.stop()


def _both(frames: LedgerFrames, as_of: Any, spark: Any, buckets: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from pipelines.features.spark_engine import spark_features

    on_spark = spark_features(frames, as_of, buckets=buckets, spark=spark)
    in_process = compute_features(frames, as_of)
    return on_spark.sort_values("customer_id", ignore_index=True), in_process


@pytest.mark.spark
def test_spark_and_pandas_engines_give_identical_frames(spark: Any, tiny_ledger: Engine) -> None:
    frames = random_frames(21, customers=120, transactions=3000)
    on_spark, in_process = _both(frames, "2025-11-15", spark, buckets=5)
    assert len(in_process) > 80  # several buckets, many customers each
    pd.testing.assert_frame_equal(on_spark, in_process, check_exact=True)

    ledger_frames = extract(tiny_ledger, rules=RULES)
    on_spark, in_process = _both(ledger_frames, CUTOFF, spark, buckets=2)
    pd.testing.assert_frame_equal(on_spark, in_process, check_exact=True)


def test_missing_pyspark_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.features.spark_engine import spark_features

    monkeypatch.setitem(sys.modules, "pyspark", None)  # what an environment without the extra looks like
    with pytest.raises(ConfigurationError, match=r"install the \[spark\] extra"):
        spark_features(random_frames(1), "2025-11-15")
