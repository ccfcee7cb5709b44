"""Data in (sources), and point-in-time features and labels over the ledger."""

from pipelines.catalogue import (
    CATALOGUE,
    CATEGORIES,
    CHANNELS,
    FEATURE_NAMES,
    FEATURE_VERSION,
    GENDERS,
    INCOME_BANDS,
    REGIONS,
    catalogue_markdown,
    feature_version,
)
from pipelines.extract import extract
from pipelines.feature_job import STEPS, parse_as_of_date, run_feature_job
from pipelines.features import FeatureConfig, compute_features, to_cutoff
from pipelines.frames import LedgerFrames
from pipelines.hillstrom import OUTCOMES, read_hillstrom, uplift_frame
from pipelines.history import ingest_history
from pipelines.ingest import IngestReport, ingest_frame, read_transactions
from pipelines.labels import (
    CHURN_ACTIVITY,
    CHURN_HORIZON_DAYS,
    churn_label_counts,
    churn_labels,
    data_end,
    offer_response_labels,
    training_set,
)
from pipelines.pandas_engine import pandas_features
from pipelines.sim_model import SimConfig
from pipelines.simulator import (
    DEFAULT_START,
    check_config,
    check_output,
    churn_truth,
    output_root,
    simulate,
    today_utc,
    truth_file,
)
from pipelines.snapshots import (
    DEFAULT_DIR,
    ONLINE,
    OnlineFeatures,
    feature_matrix,
    read_snapshot,
    refresh_online,
    snapshot_dates,
)
from pipelines.starbucks import EPOCH, check_directory, import_starbucks
from pipelines.uplift_labels import has_control, read_decisions, uplift_labels

__all__ = [
    "CATALOGUE",
    "CATEGORIES",
    "CHANNELS",
    "CHURN_ACTIVITY",
    "CHURN_HORIZON_DAYS",
    "DEFAULT_DIR",
    "DEFAULT_START",
    "EPOCH",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "GENDERS",
    "INCOME_BANDS",
    "ONLINE",
    "OUTCOMES",
    "REGIONS",
    "STEPS",
    "FeatureConfig",
    "IngestReport",
    "LedgerFrames",
    "OnlineFeatures",
    "SimConfig",
    "catalogue_markdown",
    "check_config",
    "check_directory",
    "check_output",
    "churn_label_counts",
    "churn_labels",
    "churn_truth",
    "compute_features",
    "data_end",
    "extract",
    "feature_matrix",
    "feature_version",
    "has_control",
    "import_starbucks",
    "ingest_frame",
    "ingest_history",
    "offer_response_labels",
    "output_root",
    "pandas_features",
    "parse_as_of_date",
    "read_decisions",
    "read_hillstrom",
    "read_snapshot",
    "read_transactions",
    "refresh_online",
    "run_feature_job",
    "simulate",
    "snapshot_dates",
    "to_cutoff",
    "today_utc",
    "training_set",
    "truth_file",
    "uplift_frame",
    "uplift_labels",
]
