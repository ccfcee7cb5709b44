"""What the service runs between a request and the packages below: the model slots and the state they serve,
the per-process micro-batchers (postings, inference, customer facts, the decision writer), ranking and
shadow mode, metrics and the stores'
set-up. Nothing here knows about HTTP routes; ``serving.api`` calls it.
"""

from serving.runtime.batcher import PostingBatcher
from serving.runtime.decision_writer import DecisionWriter
from serving.runtime.facts import FactsReader
from serving.runtime.inference import InferenceBatcher, Scores, score_rows
from serving.runtime.metrics import MetricsMiddleware, prepare_multiprocess_dir, remove_multiprocess_dir
from serving.runtime.microbatch import MicroBatcher
from serving.runtime.ranking import customer_rows, plan_campaign, rank_customer, score_answers
from serving.runtime.redaction import describe_error, redacted_traceback
from serving.runtime.served_models import MultiplierRule, Snapshot
from serving.runtime.served_state import ScoringState, health_of, parse_policy, reader_engine, served_parts
from serving.runtime.shadow import shadow_report
from serving.runtime.slot_loaders import CATALOGUE_ABSENT, OFFERS_ABSENT, UPLIFT_ABSENT
from serving.runtime.slots import Loaded, NotConfigured, Slot
from serving.runtime.stores import open_ledger, prepare_ledger, prepare_mlflow, prepare_stores, safe_url

__all__ = [
    "CATALOGUE_ABSENT",
    "OFFERS_ABSENT",
    "UPLIFT_ABSENT",
    "DecisionWriter",
    "FactsReader",
    "InferenceBatcher",
    "Loaded",
    "MetricsMiddleware",
    "MicroBatcher",
    "MultiplierRule",
    "NotConfigured",
    "PostingBatcher",
    "Scores",
    "ScoringState",
    "Slot",
    "Snapshot",
    "customer_rows",
    "describe_error",
    "health_of",
    "open_ledger",
    "parse_policy",
    "plan_campaign",
    "prepare_ledger",
    "prepare_mlflow",
    "prepare_multiprocess_dir",
    "prepare_stores",
    "rank_customer",
    "reader_engine",
    "redacted_traceback",
    "remove_multiprocess_dir",
    "safe_url",
    "score_answers",
    "score_rows",
    "served_parts",
    "shadow_report",
]
