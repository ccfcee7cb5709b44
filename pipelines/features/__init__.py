"""Point-in-time features over the ledger: a declared catalogue, one pure compute function per customer
partition (pandas or Spark), Parquet snapshots and the online store, and the job that strings them."""

from typing import Any

from pipelines.features.catalogue import (
    CATEGORIES,
    CHANNELS,
    FEATURE_NAMES,
    GENDERS,
    INCOME_BANDS,
    KEYS,
    REGIONS,
    Feature,
    build_catalogue,
    feature_version,
)
from pipelines.features.compute import compute_features
from pipelines.features.config import (
    FeatureConfig,
    catalogue_markdown,
    current_catalogue,
    current_feature_version,
    default_config,
)
from pipelines.features.cutoff import known_customers, to_cutoff
from pipelines.features.extract import extract
from pipelines.features.frames import LedgerFrames
from pipelines.features.job import STEPS, FeatureJobReport, parse_as_of_date, run_feature_job
from pipelines.features.online import ONLINE, OnlineFeatures, feature_matrix, refresh_online
from pipelines.features.pandas_engine import pandas_features
from pipelines.features.snapshots import DEFAULT_DIR, read_snapshot, snapshot_dates, write_snapshot


def __getattr__(name: str) -> Any:
    """``CATALOGUE`` and ``FEATURE_VERSION``, for their importers: those of the rules in force, computed
    when asked (``current_catalogue()``, ``current_feature_version()``), never when this is imported."""
    if name == "CATALOGUE":
        return current_catalogue()
    if name == "FEATURE_VERSION":
        return current_feature_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATALOGUE",
    "CATEGORIES",
    "CHANNELS",
    "DEFAULT_DIR",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "GENDERS",
    "INCOME_BANDS",
    "KEYS",
    "ONLINE",
    "REGIONS",
    "STEPS",
    "Feature",
    "FeatureConfig",
    "FeatureJobReport",
    "LedgerFrames",
    "OnlineFeatures",
    "build_catalogue",
    "catalogue_markdown",
    "compute_features",
    "current_catalogue",
    "current_feature_version",
    "default_config",
    "extract",
    "feature_matrix",
    "feature_version",
    "known_customers",
    "pandas_features",
    "parse_as_of_date",
    "read_snapshot",
    "refresh_online",
    "run_feature_job",
    "snapshot_dates",
    "to_cutoff",
    "write_snapshot",
]
