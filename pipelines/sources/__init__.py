"""Data in: the simulator, the generic transactions file, history directories, Starbucks and Hillstrom.

Sources write the ledger through ``loyalty_core`` only and import nothing of features or labels."""

from pipelines.sources.hillstrom import OUTCOMES, read_hillstrom, uplift_frame
from pipelines.sources.history import HistoryReport, ingest_history
from pipelines.sources.ingest import IngestReport, RowProblem, ingest_file, ingest_frame, read_transactions
from pipelines.sources.ingest_path import PathIngestReport, ingest_path
from pipelines.sources.loading import load_customers, load_offers
from pipelines.sources.simulator import (
    DEFAULT_START,
    SimConfig,
    SimSummary,
    check_config,
    check_output,
    churn_truth,
    output_root,
    simulate,
    today_utc,
    truth_file,
)
from pipelines.sources.starbucks import EPOCH, StarbucksReport, check_directory, import_starbucks

__all__ = [
    "DEFAULT_START",
    "EPOCH",
    "OUTCOMES",
    "HistoryReport",
    "IngestReport",
    "PathIngestReport",
    "RowProblem",
    "SimConfig",
    "SimSummary",
    "StarbucksReport",
    "check_config",
    "check_directory",
    "check_output",
    "churn_truth",
    "import_starbucks",
    "ingest_file",
    "ingest_frame",
    "ingest_history",
    "ingest_path",
    "load_customers",
    "load_offers",
    "output_root",
    "read_hillstrom",
    "read_transactions",
    "simulate",
    "today_utc",
    "truth_file",
    "uplift_frame",
]
