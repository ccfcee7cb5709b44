"""The Spark engine: the same feature function, run per bucket of customers with ``applyInPandas``.

The ledger frames are packed into one long events frame (``frames.pack``), each customer is put in a bucket
by a stable hash of their id (``pmod(xxhash64(customer_id), buckets)``: many customers per call, never one),
and every bucket's events are unpacked and handed to ``features.compute_features`` in a Python worker. Since
that function gives a customer the same row whatever else is in its input, the union of the buckets is
exactly the pandas engine's frame (tests/pipelines/test_spark_engine.py checks it).

pyspark is an optional extra (``pip install -e '.[spark]'``, plus a Java 17 runtime) and is imported only
here, only when the Spark engine is asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

from loyalty_core import ConfigurationError, get_settings
from pipelines.features.catalogue import KEYS
from pipelines.features.compute import compute_features
from pipelines.features.config import FeatureConfig, default_config
from pipelines.features.cutoff import to_cutoff
from pipelines.features.frames import PACKED, TS, LedgerFrames, pack, unpack

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

DEFAULT_BUCKETS = 8


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise ConfigurationError(
            "the Spark engine needs pyspark: install the [spark] extra (pip install -e '.[spark]') "
            "and a Java 17 runtime, or use --engine pandas"
        ) from exc
    return pyspark


def spark_session(app_name: str = "loyalty-features", *, cores: int = 2) -> SparkSession:
    """A session for the feature job: few shuffle partitions, Arrow, UTC.

    ``local[cores]`` unless ``LOYALTY_SPARK_MASTER`` (``Settings.spark_master``) names a cluster
    (``spark://host:7077``, ``yarn``...): the same function then runs on the cluster's executors, which need
    this project installed.
    """
    _pyspark()
    from pyspark.sql import SparkSession

    # The Python workers must be this interpreter (the one with our packages), not whatever "python" is.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # pyspark 4 warns that it does not fully support pandas 3, in the driver and in every worker on every
    # batch; the engine's test checks the results instead, so the warning is silenced for this job.
    quiet = "PySpark does not yet fully support pandas"
    warnings.filterwarnings("ignore", message=quiet, category=FutureWarning)
    os.environ.setdefault("PYTHONWARNINGS", f"ignore:{quiet}:FutureWarning")
    try:
        session = (
            SparkSession.builder.master(get_settings().spark_master or f"local[{cores}]")
            .appName(app_name)
            .config("spark.sql.shuffle.partitions", str(2 * cores))
            .config("spark.default.parallelism", str(2 * cores))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "1g")
            .getOrCreate()
        )
    except Exception as exc:  # the JVM did not start: no Java, or a broken installation
        raise ConfigurationError(f"could not start Spark (is Java 17 installed and on PATH?): {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one INFO line per gateway connection otherwise
    return session


def _events_schema() -> Any:
    from pyspark.sql import types as T

    kinds = {"str": T.StringType(), "int64": T.LongType(), "float64": T.DoubleType(), TS: T.TimestampType()}
    return T.StructType([T.StructField(name, kinds[dtype], True) for name, dtype in PACKED.items()])


def _output_schema(config: FeatureConfig) -> Any:
    from pyspark.sql import types as T

    fields = [T.StructField(KEYS[0], T.StringType(), False), T.StructField(KEYS[1], T.TimestampType(), False)]
    kinds = {"int64": T.LongType(), "float64": T.DoubleType()}
    fields += [T.StructField(f.name, kinds[f.dtype], True) for f in config.catalogue]
    return T.StructType(fields)


def features_of_events(
    events: SparkFrame,
    as_of: dt.datetime | dt.date | str,
    config: FeatureConfig | None = None,
    *,
    buckets: int = DEFAULT_BUCKETS,
) -> SparkFrame:
    """The feature frame of a Spark events frame (``PACKED`` columns), computed bucket by bucket."""
    from pyspark.sql import functions as F

    config = config or default_config()
    cutoff = to_cutoff(as_of)

    def one_bucket(pdf: pd.DataFrame) -> pd.DataFrame:
        out = compute_features(unpack(pdf.drop(columns=["bucket"])), cutoff, config)
        # Arrow hands timestamps to Spark as UTC instants; tz-aware pandas columns convert without loss.
        return out

    with_bucket = events.withColumn("bucket", F.pmod(F.xxhash64("customer_id"), F.lit(buckets)))
    return with_bucket.groupBy("bucket").applyInPandas(one_bucket, schema=_output_schema(config))


def spark_features(
    frames: LedgerFrames,
    as_of: dt.datetime | dt.date | str,
    config: FeatureConfig | None = None,
    *,
    buckets: int = DEFAULT_BUCKETS,
    spark: SparkSession | None = None,
) -> pd.DataFrame:
    """``compute_features(frames, as_of)`` computed on Spark; the same frame, row for row.

    The frames are packed on the driver here; a deployment whose data outgrows one machine builds the
    events frame in Spark (same ``PACKED`` columns, e.g. from Parquet exports) and calls
    ``features_of_events`` directly.
    """
    config = config or default_config()
    session = spark or spark_session()
    events = pack(frames)
    sdf = session.createDataFrame(events, schema=_events_schema())
    result = features_of_events(sdf, as_of, config, buckets=buckets).toPandas()
    return _like_pandas_engine(result, config)


def _like_pandas_engine(result: pd.DataFrame, config: FeatureConfig) -> pd.DataFrame:
    """Spark's ``toPandas`` frame with the pandas engine's row order and dtypes."""
    out = result.sort_values(KEYS[0], ignore_index=True)
    as_of = pd.to_datetime(out[KEYS[1]])
    as_of = as_of.dt.tz_localize("UTC") if as_of.dt.tz is None else as_of.dt.tz_convert("UTC")
    out[KEYS[1]] = as_of.dt.as_unit("us")
    out[KEYS[0]] = out[KEYS[0]].astype("str")
    return out.astype({f.name: f.dtype for f in config.catalogue})
